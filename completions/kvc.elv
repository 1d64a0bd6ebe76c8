
use builtin;
use str;

set edit:completion:arg-completer[kvc] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'kvc'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'kvc'= {
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand ls 'List the checkpoints of cache directories, with their eviction rank'
            cand show 'Show every header field, the trailer and the payload header of one checkpoint'
            cand cat 'Write the stored prompt text of a checkpoint, raw, to a pipe or file'
            cand verify 'Check every checkpoint for corruption, truncation and mislabelling (exit 1 on any error)'
            cand evict 'Delete checkpoints until the cache fits a budget, next victim first'
            cand rm 'Remove named checkpoints'
            cand gc 'Remove temp files left by crashed writers, and empty kvc state'
            cand stats 'One screen about cache directories: what they hold, what was hit, what each command would free'
            cand tree 'The prefix forest: which checkpoint''s text extends which, with the bytes that hold no prefix of their own'
            cand report 'Write one self-contained HTML file with charts (SVG) of a cache directory and, with --log, of its engine''s activity'
            cand log 'Show the journal of what kvc deleted, installed, quarantined or rewrote, oldest first'
            cand export 'Write checkpoints to a bundle (a tar stream with a digest per file) for `kvc import`'
            cand import 'Install the checkpoints of a bundle, verifying every byte before it becomes visible'
            cand trailer 'Inspect and rewrite the tool-id map trailers of checkpoints (crash-safe)'
            cand completions 'Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell)'
            cand man 'Write the man pages (kvc.1 and one per command) into DIR'
            cand match 'Explain a cache hit or miss offline: which checkpoint ds4 loads for a prompt, and why every other one loses'
            cand push 'Upload checkpoints a remote (S3-compatible object storage) lacks, checked first'
            cand pull 'Download checkpoints from a remote into a cache, verifying every byte before it becomes visible'
            cand remote 'List, remove and trim a remote''s checkpoints'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kvc;ls'= {
            cand -d 'A cache directory, as DIR (repeatable)'
            cand --dir 'A cache directory, as DIR (repeatable)'
            cand --sort 'Order of the rows'
            cand --policy 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)'
            cand --engine 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads'
            cand --now 'Evaluate scores and ages at this Unix time instead of now (reproducible output)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand -q 'Print only the full keys, one per line, in the listing''s order (for pipes: `kvc ls -q | head -3`)'
            cand --quiet 'Print only the full keys, one per line, in the listing''s order (for pipes: `kvc ls -q | head -3`)'
            cand -r 'Reverse the order'
            cand --reverse 'Reverse the order'
            cand -l 'Full keys, absolute times, model id and payload ABI'
            cand --long 'Full keys, absolute times, model id and payload ABI'
            cand --no-title 'Do not read the texts: no titles, no key check (reads 52 bytes a file)'
            cand --reject-different-quant 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;show'= {
            cand -d 'Cache directory, as DIR'
            cand --dir 'Cache directory, as DIR'
            cand --policy 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)'
            cand --engine 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads'
            cand --now 'Evaluate scores and ages at this Unix time instead of now (reproducible output)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --text 'Also show the whole text, with control characters escaped'
            cand --reject-different-quant 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;cat'= {
            cand -d 'Cache directory, as DIR'
            cand --dir 'Cache directory, as DIR'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --force 'Write the raw text even when standard output is a terminal'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;verify'= {
            cand -d 'A cache directory, as PATH (repeatable)'
            cand --dir 'A cache directory, as PATH (repeatable)'
            cand --sample 'Deep-check only this percentage of checkpoints, the same ones every run (implies --deep)'
            cand --allow 'Findings of this code do not count for the exit status or --strict, and are not quarantined: listed apart, counted in the summary (repeatable; codes in --help)'
            cand --temp-age 'Temp files of dead writers modified longer ago than this are stale (30m, 1h, 2d)'
            cand --engine 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads'
            cand --quarantine 'Move every file with an error into DIR (created 0700) with a <name>.why file; never deletes'
            cand --wait 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)'
            cand --now 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --deep 'Also read every payload whole: token ids below vocab, finite logits, every byte readable'
            cand -a 'Also report stray files (names no engine reads)'
            cand --all 'Also report stray files (names no engine reads)'
            cand --strict 'Treat warnings as errors for the exit status'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;evict'= {
            cand -d 'Cache directory, as DIR'
            cand --dir 'Cache directory, as DIR'
            cand --budget 'Evict until what the engine''s budget counts takes at most SIZE (8GiB, 1.5G, 500MB)'
            cand --older-than 'Also evict checkpoints unused for longer than DURATION (30d, 12h), budget or not'
            cand --protect 'Never evict this checkpoint (key, unique prefix, `sysprompt` or path); repeatable'
            cand --wait 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)'
            cand --max-delete 'Delete at most this much in one run, else nothing (exit 4): a share of the directory''s bytes (25%), a size (10GiB) or a number of files (100)'
            cand --policy 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)'
            cand --engine 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads'
            cand --now 'Evaluate scores and ages at this Unix time instead of now (reproducible output)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --include-unloadable 'Also delete what the engine never loads: under ds4 the readable checkpoints outside its population (other payload ABI, quant, version; sysprompt.kv with --include-agent); under hanzo-engine the *.kv entries it counts that kvc cannot read. Never foreign files, links or directories'
            cand --include-agent 'Also act on ds4-agent''s explicit saves (sysprompt.kv, agent-session, agent-system)'
            cand -n 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --dry-run 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand -q 'Print nothing on success (for cron); problems still go to stderr'
            cand --quiet 'Print nothing on success (for cron); problems still go to stderr'
            cand -y 'Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)'
            cand --yes 'Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)'
            cand --reject-different-quant 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;rm'= {
            cand -d 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --dir 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --wait 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)'
            cand --max-delete 'Delete at most this much in one run, else nothing (exit 4): a share of the directory''s bytes (25%), a size (10GiB) or a number of files (100)'
            cand --now 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --include-agent 'Also act on ds4-agent''s explicit saves (sysprompt.kv, agent-session, agent-system)'
            cand -n 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --dry-run 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand -q 'Print nothing on success (for cron); problems still go to stderr'
            cand --quiet 'Print nothing on success (for cron); problems still go to stderr'
            cand -y 'Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)'
            cand --yes 'Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;gc'= {
            cand -d 'Cache directory, as DIR'
            cand --dir 'Cache directory, as DIR'
            cand --temp-age 'Temp files of dead writers modified longer ago than this are stale (30m, 1h, 2d)'
            cand --wait 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)'
            cand --max-delete 'Delete at most this much in one run, else nothing (exit 4): a share of the directory''s bytes (25%), a size (10GiB) or a number of files (100)'
            cand --now 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand -n 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --dry-run 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand -q 'Print nothing on success (for cron); problems still go to stderr'
            cand --quiet 'Print nothing on success (for cron); problems still go to stderr'
            cand -y 'Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)'
            cand --yes 'Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;stats'= {
            cand -d 'A cache directory, as DIR (repeatable)'
            cand --dir 'A cache directory, as DIR (repeatable)'
            cand --budget 'Compare what the engine''s budget counts with SIZE, and say what `kvc evict --budget SIZE` would delete'
            cand --log 'ds4-server log to read (repeatable; `-` for standard input)'
            cand --since 'Only log lines from WHEN on: 2026-08-05, 2026-08-05T14:00 (the log''s clock) or a duration back from now (7d)'
            cand --until 'Only log lines before WHEN (a date alone includes that day)'
            cand --temp-age 'Temp files of dead writers modified longer ago than this are stale (30m, 1h, 2d)'
            cand --policy 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)'
            cand --engine 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads'
            cand --now 'Evaluate scores and ages at this Unix time instead of now (reproducible output)'
            cand --prometheus-file 'Write the node_exporter textfile format to PATH, atomically, mode 0644; print nothing else'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --reject-different-quant 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand --prometheus 'Write the node_exporter textfile format (metrics kvc_…) to standard output'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;tree'= {
            cand -d 'Cache directory, as DIR'
            cand --dir 'Cache directory, as DIR'
            cand --policy 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)'
            cand --engine 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads'
            cand --now 'Evaluate scores and ages at this Unix time instead of now (reproducible output)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --dot 'Write Graphviz DOT instead of a table (`kvc tree --dot | dot -Tsvg > tree.svg`)'
            cand --no-title 'Do not show titles (each text''s first user turn)'
            cand --reject-different-quant 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;report'= {
            cand -d 'Cache directory, as DIR'
            cand --dir 'Cache directory, as DIR'
            cand -o 'HTML file to write (atomically, mode 0600)'
            cand --output 'HTML file to write (atomically, mode 0600)'
            cand --budget 'Budget to show the usage against (as `kvc stats --budget`)'
            cand --log 'ds4-server log to read (repeatable; `-` for standard input)'
            cand --since 'Only log lines from WHEN on: 2026-08-05, 2026-08-05T14:00 (the log''s clock) or a duration back from now (7d)'
            cand --until 'Only log lines before WHEN (a date alone includes that day)'
            cand --temp-age 'Temp files of dead writers modified longer ago than this are stale (30m, 1h, 2d)'
            cand --policy 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)'
            cand --engine 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads'
            cand --now 'Evaluate scores and ages at this Unix time instead of now (reproducible output)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --reject-different-quant 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;log'= {
            cand -d 'Cache directory, as DIR'
            cand --dir 'Cache directory, as DIR'
            cand --op 'Only records of this op (repeatable: any of them): evict, rm, gc, quarantine, import, replace, trailer-set, trailer-prune, trailer-strip'
            cand --key 'Only records whose key starts with PREFIX (case-insensitive), or whose file name (gc''s temp files) does'
            cand --since 'Only records from WHEN on: 2026-08-05, 2026-08-05T14:00 (UTC) or a duration back from now (30d, 12h)'
            cand -n 'Only the newest N records (after the other filters)'
            cand --limit 'Only the newest N records (after the other filters)'
            cand --now 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand -r 'Oldest first'
            cand --reverse 'Oldest first'
            cand -l 'Full keys'
            cand --long 'Full keys'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;export'= {
            cand --reason 'Only checkpoints saved for this reason (repeatable: any of them)'
            cand --min-tokens 'Only checkpoints of at least N tokens'
            cand --used-within 'Only checkpoints used (or, never used, created) within DURATION, e.g. 2d, 12h'
            cand --quant 'Only checkpoints with these routed-expert quant bits'
            cand -o 'Bundle file to write (atomically), or `-` for standard output (not a terminal)'
            cand --output 'Bundle file to write (atomically), or `-` for standard output (not a terminal)'
            cand -d 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --dir 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --now 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --all 'Every checkpoint of the directory (filters still apply; a KEY argument may then only be the directory)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;import'= {
            cand --on-conflict 'When the target already has a checkpoint with the same key (identical bytes count as present; unsafe next to a running hanzo-engine, see below)'
            cand --budget 'Afterwards, evict (as `kvc evict` does) until the checkpoints fit in SIZE (e.g. 40G, 512MiB), never evicting what was just imported'
            cand --wait 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)'
            cand -d 'Cache directory, as DIR'
            cand --dir 'Cache directory, as DIR'
            cand --policy 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)'
            cand --engine 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads'
            cand --now 'Evaluate scores and ages at this Unix time instead of now (reproducible output)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --reset-stats 'Zero the hit counts and set last_used to now in the installed copies'
            cand --include-agent 'With replace or newer, also replace ds4-agent''s explicit saves (sysprompt.kv, agent-system, agent-session), which are kept otherwise'
            cand -n 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --dry-run 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;trailer'= {
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand ls 'List the entries of a checkpoint''s tool-id map, and which of them ds4 uses (the last entry of an id wins)'
            cand export 'Write a checkpoint''s tool-id map to standard output as JSON (shadowed entries marked)'
            cand set 'Replace the tool-id map of checkpoints with one given as JSON'
            cand prune 'Drop map entries ds4 never uses (shadowed ids, NUL-first) or whose DSML block is not in the text'
            cand strip 'Remove the tool-id map and clear ext bit 0 (also repairs a broken trailer)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kvc;trailer;ls'= {
            cand -d 'Cache directory, as DIR'
            cand --dir 'Cache directory, as DIR'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;trailer;export'= {
            cand -d 'Cache directory, as DIR'
            cand --dir 'Cache directory, as DIR'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;trailer;set'= {
            cand --from 'JSON file with the map, or `-` for standard input'
            cand --wait 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)'
            cand --now 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)'
            cand --method 'How to write the new trailer'
            cand -d 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --dir 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --allow-missing 'Store entries whose DSML block does not occur in the text'
            cand -n 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --dry-run 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;trailer;prune'= {
            cand --wait 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)'
            cand --now 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)'
            cand --method 'How to write the new trailer'
            cand -d 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --dir 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --all 'Every checkpoint of the directory that has something to rewrite (a KEY argument may then only be the directory)'
            cand -n 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --dry-run 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;trailer;strip'= {
            cand --wait 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)'
            cand --now 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)'
            cand --method 'How to write the new trailer'
            cand -d 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --dir 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --all 'Every checkpoint of the directory that has something to rewrite (a KEY argument may then only be the directory)'
            cand -n 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --dry-run 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;trailer;help'= {
            cand ls 'List the entries of a checkpoint''s tool-id map, and which of them ds4 uses (the last entry of an id wins)'
            cand export 'Write a checkpoint''s tool-id map to standard output as JSON (shadowed entries marked)'
            cand set 'Replace the tool-id map of checkpoints with one given as JSON'
            cand prune 'Drop map entries ds4 never uses (shadowed ids, NUL-first) or whose DSML block is not in the text'
            cand strip 'Remove the tool-id map and clear ext bit 0 (also repairs a broken trailer)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kvc;trailer;help;ls'= {
        }
        &'kvc;trailer;help;export'= {
        }
        &'kvc;trailer;help;set'= {
        }
        &'kvc;trailer;help;prune'= {
        }
        &'kvc;trailer;help;strip'= {
        }
        &'kvc;trailer;help;help'= {
        }
        &'kvc;completions'= {
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --dynamic 'Print the registration script of dynamic completion instead: it asks kvc itself, so keys complete from the cache directory (the --dir typed, else $KVC_DIR, else ~/.ds4/kvcache) and a number typed for a size to its units'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;man'= {
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;match'= {
            cand -d 'Cache directory, as DIR'
            cand --dir 'Cache directory, as DIR'
            cand --ctx 'Live context size, as ds4-server''s --ctx [default: 32768]'
            cand --model-id 'Live model id: 0 flash, 1 pro, 2 glm-5.2 [default: 0]'
            cand --model 'Live model by name: flash, pro, glm-5.2, laguna, qwen3.8'
            cand --quant 'Live routed-expert quant bits (2 or 4); compared only with --reject-different-quant'
            cand --min-tokens 'Minimum checkpoint tokens, as ds4-server''s --kv-cache-min-tokens [default: 512]'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --reject-different-quant 'As ds4-server''s --kv-cache-reject-different-quant: skip checkpoints of other quant bits'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;push'= {
            cand --reason 'Only checkpoints saved for this reason (repeatable: any of them)'
            cand --min-tokens 'Only checkpoints of at least N tokens'
            cand --used-within 'Only checkpoints used (or, never used, created) within DURATION, e.g. 2d, 12h'
            cand --quant 'Only checkpoints with these routed-expert quant bits'
            cand --exclude-text 'Never send a checkpoint whose stored text matches REGEX (repeatable; checked before upload)'
            cand --remote 'The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)'
            cand -d 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --dir 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --engine 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads'
            cand --wait 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)'
            cand --now 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --all 'Every checkpoint of the directory (filters still apply)'
            cand --read-only 'Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull'
            cand --allow-http 'Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)'
            cand -n 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --dry-run 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;pull'= {
            cand --match 'The checkpoint ds4 mainline would load for this rendered prompt (a file; `-` for standard input)'
            cand --model 'Only this model''s checkpoints (flash, pro, glm-5.2, …, or a dialect such as d20: the remote''s namespaces); with --match, the live model'
            cand --reason 'Only checkpoints saved for this reason (repeatable: any of them)'
            cand --min-tokens 'Only checkpoints of at least N tokens (with --match: ds4-server''s --kv-cache-min-tokens, default 512)'
            cand --used-within 'Only checkpoints used (or, never used, created) within DURATION, e.g. 2d, 12h'
            cand --quant 'Only checkpoints with these routed-expert quant bits (with --match: as --kv-cache-reject-different-quant)'
            cand --ctx 'With --match: the live context size, as ds4-server''s --ctx [default: 32768]'
            cand --on-conflict 'When the cache already has another copy under the key (the same text, payload and trailers count as present)'
            cand --budget 'Afterwards, evict (as `kvc evict` does) until the checkpoints fit in SIZE, never evicting what was just pulled'
            cand --remote 'The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)'
            cand -d 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --dir 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --policy 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)'
            cand --engine 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads'
            cand --now 'Evaluate scores and ages at this Unix time instead of now (reproducible output)'
            cand --wait 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --all 'Every checkpoint of the remote (filters still apply)'
            cand --reset-stats 'Zero the hit counts and set last_used to now in the installed copies'
            cand --include-agent 'With replace or newer, also replace ds4-agent''s explicit saves (sysprompt.kv, agent-system, agent-session)'
            cand --read-only 'Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull'
            cand --allow-http 'Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)'
            cand -n 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --dry-run 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;remote'= {
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand ls 'List a remote''s checkpoints with `kvc ls`''s columns and JSON, one table per namespace'
            cand rm 'Delete checkpoints from a remote by key'
            cand gc 'Trim a remote by age and size, and abort abandoned multipart uploads'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kvc;remote;ls'= {
            cand --model 'Only this namespace (flash, pro, glm-5.2, …, or a dialect such as d20)'
            cand --sort 'Order of the rows'
            cand --remote 'The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)'
            cand --policy 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)'
            cand --engine 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads'
            cand --now 'Evaluate scores and ages at this Unix time instead of now (reproducible output)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand -q 'Print only the full keys, one per line'
            cand --quiet 'Print only the full keys, one per line'
            cand -r 'Reverse the order'
            cand --reverse 'Reverse the order'
            cand -l 'Full keys, absolute times, model id and payload ABI'
            cand --long 'Full keys, absolute times, model id and payload ABI'
            cand --no-title 'Do not show titles'
            cand --read-only 'Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull'
            cand --allow-http 'Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)'
            cand --reject-different-quant 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;remote;rm'= {
            cand --model 'Only in this namespace (flash, pro, glm-5.2, …, d20)'
            cand --remote 'The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --read-only 'Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull'
            cand --allow-http 'Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)'
            cand -n 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --dry-run 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;remote;gc'= {
            cand --max-age 'Delete checkpoints not seen in use for longer than DURATION (30d, 12h)'
            cand --max-size 'Then delete the oldest until the checkpoints take at most SIZE (500G, 1.5T)'
            cand --uploads-older-than 'Abort multipart uploads started longer ago than DURATION'
            cand --model 'Only in this namespace (flash, pro, glm-5.2, …, d20)'
            cand --remote 'The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)'
            cand --now 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)'
            cand --color 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb'
            cand --read-only 'Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull'
            cand --allow-http 'Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)'
            cand -n 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --dry-run 'Show what would be done and change nothing (no lock, not even kvc''s own state)'
            cand --json 'Print JSON (schema in doc/GUIDE.md) instead of a table'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;remote;help'= {
            cand ls 'List a remote''s checkpoints with `kvc ls`''s columns and JSON, one table per namespace'
            cand rm 'Delete checkpoints from a remote by key'
            cand gc 'Trim a remote by age and size, and abort abandoned multipart uploads'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kvc;remote;help;ls'= {
        }
        &'kvc;remote;help;rm'= {
        }
        &'kvc;remote;help;gc'= {
        }
        &'kvc;remote;help;help'= {
        }
        &'kvc;help'= {
            cand ls 'List the checkpoints of cache directories, with their eviction rank'
            cand show 'Show every header field, the trailer and the payload header of one checkpoint'
            cand cat 'Write the stored prompt text of a checkpoint, raw, to a pipe or file'
            cand verify 'Check every checkpoint for corruption, truncation and mislabelling (exit 1 on any error)'
            cand evict 'Delete checkpoints until the cache fits a budget, next victim first'
            cand rm 'Remove named checkpoints'
            cand gc 'Remove temp files left by crashed writers, and empty kvc state'
            cand stats 'One screen about cache directories: what they hold, what was hit, what each command would free'
            cand tree 'The prefix forest: which checkpoint''s text extends which, with the bytes that hold no prefix of their own'
            cand report 'Write one self-contained HTML file with charts (SVG) of a cache directory and, with --log, of its engine''s activity'
            cand log 'Show the journal of what kvc deleted, installed, quarantined or rewrote, oldest first'
            cand export 'Write checkpoints to a bundle (a tar stream with a digest per file) for `kvc import`'
            cand import 'Install the checkpoints of a bundle, verifying every byte before it becomes visible'
            cand trailer 'Inspect and rewrite the tool-id map trailers of checkpoints (crash-safe)'
            cand completions 'Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell)'
            cand man 'Write the man pages (kvc.1 and one per command) into DIR'
            cand match 'Explain a cache hit or miss offline: which checkpoint ds4 loads for a prompt, and why every other one loses'
            cand push 'Upload checkpoints a remote (S3-compatible object storage) lacks, checked first'
            cand pull 'Download checkpoints from a remote into a cache, verifying every byte before it becomes visible'
            cand remote 'List, remove and trim a remote''s checkpoints'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kvc;help;ls'= {
        }
        &'kvc;help;show'= {
        }
        &'kvc;help;cat'= {
        }
        &'kvc;help;verify'= {
        }
        &'kvc;help;evict'= {
        }
        &'kvc;help;rm'= {
        }
        &'kvc;help;gc'= {
        }
        &'kvc;help;stats'= {
        }
        &'kvc;help;tree'= {
        }
        &'kvc;help;report'= {
        }
        &'kvc;help;log'= {
        }
        &'kvc;help;export'= {
        }
        &'kvc;help;import'= {
        }
        &'kvc;help;trailer'= {
            cand ls 'List the entries of a checkpoint''s tool-id map, and which of them ds4 uses (the last entry of an id wins)'
            cand export 'Write a checkpoint''s tool-id map to standard output as JSON (shadowed entries marked)'
            cand set 'Replace the tool-id map of checkpoints with one given as JSON'
            cand prune 'Drop map entries ds4 never uses (shadowed ids, NUL-first) or whose DSML block is not in the text'
            cand strip 'Remove the tool-id map and clear ext bit 0 (also repairs a broken trailer)'
        }
        &'kvc;help;trailer;ls'= {
        }
        &'kvc;help;trailer;export'= {
        }
        &'kvc;help;trailer;set'= {
        }
        &'kvc;help;trailer;prune'= {
        }
        &'kvc;help;trailer;strip'= {
        }
        &'kvc;help;completions'= {
        }
        &'kvc;help;man'= {
        }
        &'kvc;help;match'= {
        }
        &'kvc;help;push'= {
        }
        &'kvc;help;pull'= {
        }
        &'kvc;help;remote'= {
            cand ls 'List a remote''s checkpoints with `kvc ls`''s columns and JSON, one table per namespace'
            cand rm 'Delete checkpoints from a remote by key'
            cand gc 'Trim a remote by age and size, and abort abandoned multipart uploads'
        }
        &'kvc;help;remote;ls'= {
        }
        &'kvc;help;remote;rm'= {
        }
        &'kvc;help;remote;gc'= {
        }
        &'kvc;help;help'= {
        }
    ]
    $completions[$command]
}
