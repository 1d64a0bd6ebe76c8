#!/bin/sh
# Build the seed corpora of the fuzz targets from the sample directories in
# tests/fixtures (README.md, "Fuzzing and property tests"). Run from anywhere; writes fuzz/corpus/,
# which git ignores. Coreutils (od, tail, cp), and cargo for the bundles,
# which kvc itself exports (the first run builds it).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fixtures="$here/../tests/fixtures"
corpus="$here/corpus"
mkdir -p "$corpus/checkpoint_file" "$corpus/dsv4" "$corpus/trailer" "$corpus/journal" \
    "$corpus/bundle"

for f in "$fixtures"/*/*.kv "$fixtures"/*/*.kv.tmp*; do
    [ -f "$f" ] || continue
    name="$(basename "$(dirname "$f")")-$(basename "$f")"
    # Whole files: every dialect and every defect of broken/.
    cp "$f" "$corpus/checkpoint_file/$name"
    size=$(wc -c < "$f")
    [ "$size" -ge 52 ] || continue
    # FORMAT.md §3: u32 text_len at 48, u64 payload_bytes at 40.
    text_len=$(od -An -tu4 -j48 -N4 "$f" | tr -d ' ')
    payload_bytes=$(od -An -tu8 -j40 -N8 "$f" | tr -d ' ')
    # A length no file here could have would overflow sh arithmetic: such
    # files are seeds of checkpoint_file only.
    [ ${#payload_bytes} -le 15 ] || continue
    payload_at=$((52 + text_len))
    [ "$payload_at" -lt "$size" ] || continue
    # The payload and what follows it: DSV4 headers and count arrays.
    tail -c +$((payload_at + 1)) "$f" > "$corpus/dsv4/$name"
    trailer_at=$((payload_at + payload_bytes))
    if [ "$trailer_at" -lt "$size" ]; then
        # Bytes after the payload: tool-id map trailers (and garbage).
        tail -c +$((trailer_at + 1)) "$f" > "$corpus/trailer/$name"
    fi
done
cp "$here"/seeds/journal/* "$corpus/journal/"

# Bundles: small real ones, so that mutations start from streams that get
# past the tar and digest checks (one entry, two, an agent's sysprompt, a
# tool-map trailer). Export only reads the fixtures.
export_bundle() { # NAME DIR KEY-or---all
    cargo run -q --manifest-path "$here/../Cargo.toml" -- \
        export --dir "$fixtures/$2" -o "$corpus/bundle/$1.tar" "$3" > /dev/null
}
export_bundle hanzo-all hanzo --all
export_bundle ds4-shutdown ds4 8fd9
export_bundle ds4-tool-map ds4 2b5d
export_bundle agent-sysprompt agent sysprompt
for t in checkpoint_file dsv4 trailer journal bundle; do
    echo "$t: $(ls "$corpus/$t" | wc -l) seeds"
done
