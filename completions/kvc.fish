# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_kvc_global_optspecs
    string join \n color= h/help V/version
end

function __fish_kvc_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_kvc_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_kvc_using_subcommand
    set -l cmd (__fish_kvc_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c kvc -n "__fish_kvc_needs_command" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_needs_command" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "ls" -d 'List the checkpoints of cache directories, with their eviction rank'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "show" -d 'Show every header field, the trailer and the payload header of one checkpoint'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "cat" -d 'Write the stored prompt text of a checkpoint, raw, to a pipe or file'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "verify" -d 'Check every checkpoint for corruption, truncation and mislabelling (exit 1 on any error)'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "evict" -d 'Delete checkpoints until the cache fits a budget, next victim first'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "rm" -d 'Remove named checkpoints'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "gc" -d 'Remove temp files left by crashed writers, and empty kvc state'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "stats" -d 'One screen about cache directories: what they hold, what was hit, what each command would free'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "tree" -d 'The prefix forest: which checkpoint\'s text extends which, with the bytes that hold no prefix of their own'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "report" -d 'Write one self-contained HTML file with charts (SVG) of a cache directory and, with --log, of its engine\'s activity'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "log" -d 'Show the journal of what kvc deleted, installed, quarantined or rewrote, oldest first'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "export" -d 'Write checkpoints to a bundle (a tar stream with a digest per file) for `kvc import`'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "import" -d 'Install the checkpoints of a bundle, verifying every byte before it becomes visible'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "trailer" -d 'Inspect and rewrite the tool-id map trailers of checkpoints (crash-safe)'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "completions" -d 'Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell)'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "man" -d 'Write the man pages (kvc.1 and one per command) into DIR'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "match" -d 'Explain a cache hit or miss offline: which checkpoint ds4 loads for a prompt, and why every other one loses'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "push" -d 'Upload checkpoints a remote (S3-compatible object storage) lacks, checked first'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "pull" -d 'Download checkpoints from a remote into a cache, verifying every byte before it becomes visible'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "remote" -d 'List, remove and trim a remote\'s checkpoints'
complete -c kvc -n "__fish_kvc_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kvc -n "__fish_kvc_using_subcommand ls" -s d -l dir -d 'A cache directory, as DIR (repeatable)' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand ls" -l sort -d 'Order of the rows' -r -f -a "used\t'Last use, newest first'
created\t'Creation time, newest first'
size\t'File size, largest first'
tokens\t'Token count, largest first'
hits\t'Hit count, largest first'
score\t'Eviction order: the next victim first'
key\t'Key, ascending'"
complete -c kvc -n "__fish_kvc_using_subcommand ls" -l policy -d 'Eviction order [default: the policy of the directory\'s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)' -r -f -a "ds4\t'ds4 mainline since ec6a82a (2026-05-26, ds4_kvstore.c at b030961): ((hits decayed + 1) × tokens) / size, ×2 for cold/evict/shutdown, superseded continued waypoints × (0.05 + 0.45·h)'
ds4-classic\t'ds4 up to 2026-05-25 (8d57664): ((hits decayed + 1) × tokens) / size'
lru\t'hanzo-engine (disk_kv_cache.rs, c8bcee7d5): oldest last_used first, unreadable headers first, readdir order for ties, never below 64 MiB'"
complete -c kvc -n "__fish_kvc_using_subcommand ls" -l engine -d 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads' -r -f -a "ds4\t'ds4 mainline since e8e8779 (2026-05-26): ds4-server, ds4-agent'
ds4-classic\t'ds4 up to 2026-05-25, before the payload ABI byte'
hanzo\t'hanzo-engine\'s disk KV spill'"
complete -c kvc -n "__fish_kvc_using_subcommand ls" -l now -d 'Evaluate scores and ages at this Unix time instead of now (reproducible output)' -r
complete -c kvc -n "__fish_kvc_using_subcommand ls" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand ls" -s q -l quiet -d 'Print only the full keys, one per line, in the listing\'s order (for pipes: `kvc ls -q | head -3`)'
complete -c kvc -n "__fish_kvc_using_subcommand ls" -s r -l reverse -d 'Reverse the order'
complete -c kvc -n "__fish_kvc_using_subcommand ls" -s l -l long -d 'Full keys, absolute times, model id and payload ABI'
complete -c kvc -n "__fish_kvc_using_subcommand ls" -l no-title -d 'Do not read the texts: no titles, no key check (reads 52 bytes a file)'
complete -c kvc -n "__fish_kvc_using_subcommand ls" -l reject-different-quant -d 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)'
complete -c kvc -n "__fish_kvc_using_subcommand ls" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand ls" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand show" -s d -l dir -d 'Cache directory, as DIR' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand show" -l policy -d 'Eviction order [default: the policy of the directory\'s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)' -r -f -a "ds4\t'ds4 mainline since ec6a82a (2026-05-26, ds4_kvstore.c at b030961): ((hits decayed + 1) × tokens) / size, ×2 for cold/evict/shutdown, superseded continued waypoints × (0.05 + 0.45·h)'
ds4-classic\t'ds4 up to 2026-05-25 (8d57664): ((hits decayed + 1) × tokens) / size'
lru\t'hanzo-engine (disk_kv_cache.rs, c8bcee7d5): oldest last_used first, unreadable headers first, readdir order for ties, never below 64 MiB'"
complete -c kvc -n "__fish_kvc_using_subcommand show" -l engine -d 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads' -r -f -a "ds4\t'ds4 mainline since e8e8779 (2026-05-26): ds4-server, ds4-agent'
ds4-classic\t'ds4 up to 2026-05-25, before the payload ABI byte'
hanzo\t'hanzo-engine\'s disk KV spill'"
complete -c kvc -n "__fish_kvc_using_subcommand show" -l now -d 'Evaluate scores and ages at this Unix time instead of now (reproducible output)' -r
complete -c kvc -n "__fish_kvc_using_subcommand show" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand show" -l text -d 'Also show the whole text, with control characters escaped'
complete -c kvc -n "__fish_kvc_using_subcommand show" -l reject-different-quant -d 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)'
complete -c kvc -n "__fish_kvc_using_subcommand show" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand show" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand cat" -s d -l dir -d 'Cache directory, as DIR' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand cat" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand cat" -l force -d 'Write the raw text even when standard output is a terminal'
complete -c kvc -n "__fish_kvc_using_subcommand cat" -s h -l help -d 'Print help'
complete -c kvc -n "__fish_kvc_using_subcommand cat" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand verify" -s d -l dir -d 'A cache directory, as PATH (repeatable)' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand verify" -l sample -d 'Deep-check only this percentage of checkpoints, the same ones every run (implies --deep)' -r
complete -c kvc -n "__fish_kvc_using_subcommand verify" -l allow -d 'Findings of this code do not count for the exit status or --strict, and are not quarantined: listed apart, counted in the summary (repeatable; codes in --help)' -r
complete -c kvc -n "__fish_kvc_using_subcommand verify" -l temp-age -d 'Temp files of dead writers modified longer ago than this are stale (30m, 1h, 2d)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand verify" -l engine -d 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads' -r -f -a "ds4\t'ds4 mainline since e8e8779 (2026-05-26): ds4-server, ds4-agent'
ds4-classic\t'ds4 up to 2026-05-25, before the payload ABI byte'
hanzo\t'hanzo-engine\'s disk KV spill'"
complete -c kvc -n "__fish_kvc_using_subcommand verify" -l quarantine -d 'Move every file with an error into DIR (created 0700) with a <name>.why file; never deletes' -r -F
complete -c kvc -n "__fish_kvc_using_subcommand verify" -l wait -d 'Wait at most this long for another kvc\'s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)' -r
complete -c kvc -n "__fish_kvc_using_subcommand verify" -l now -d 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)' -r
complete -c kvc -n "__fish_kvc_using_subcommand verify" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand verify" -l deep -d 'Also read every payload whole: token ids below vocab, finite logits, every byte readable'
complete -c kvc -n "__fish_kvc_using_subcommand verify" -s a -l all -d 'Also report stray files (names no engine reads)'
complete -c kvc -n "__fish_kvc_using_subcommand verify" -l strict -d 'Treat warnings as errors for the exit status'
complete -c kvc -n "__fish_kvc_using_subcommand verify" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand verify" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand evict" -s d -l dir -d 'Cache directory, as DIR' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand evict" -l budget -d 'Evict until what the engine\'s budget counts takes at most SIZE (8GiB, 1.5G, 500MB)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand evict" -l older-than -d 'Also evict checkpoints unused for longer than DURATION (30d, 12h), budget or not' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand evict" -l protect -d 'Never evict this checkpoint (key, unique prefix, `sysprompt` or path); repeatable' -r
complete -c kvc -n "__fish_kvc_using_subcommand evict" -l wait -d 'Wait at most this long for another kvc\'s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)' -r
complete -c kvc -n "__fish_kvc_using_subcommand evict" -l max-delete -d 'Delete at most this much in one run, else nothing (exit 4): a share of the directory\'s bytes (25%), a size (10GiB) or a number of files (100)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand evict" -l policy -d 'Eviction order [default: the policy of the directory\'s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)' -r -f -a "ds4\t'ds4 mainline since ec6a82a (2026-05-26, ds4_kvstore.c at b030961): ((hits decayed + 1) × tokens) / size, ×2 for cold/evict/shutdown, superseded continued waypoints × (0.05 + 0.45·h)'
ds4-classic\t'ds4 up to 2026-05-25 (8d57664): ((hits decayed + 1) × tokens) / size'
lru\t'hanzo-engine (disk_kv_cache.rs, c8bcee7d5): oldest last_used first, unreadable headers first, readdir order for ties, never below 64 MiB'"
complete -c kvc -n "__fish_kvc_using_subcommand evict" -l engine -d 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads' -r -f -a "ds4\t'ds4 mainline since e8e8779 (2026-05-26): ds4-server, ds4-agent'
ds4-classic\t'ds4 up to 2026-05-25, before the payload ABI byte'
hanzo\t'hanzo-engine\'s disk KV spill'"
complete -c kvc -n "__fish_kvc_using_subcommand evict" -l now -d 'Evaluate scores and ages at this Unix time instead of now (reproducible output)' -r
complete -c kvc -n "__fish_kvc_using_subcommand evict" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand evict" -l include-unloadable -d 'Also delete what the engine never loads: under ds4 the readable checkpoints outside its population (other payload ABI, quant, version; sysprompt.kv with --include-agent); under hanzo-engine the *.kv entries it counts that kvc cannot read. Never foreign files, links or directories'
complete -c kvc -n "__fish_kvc_using_subcommand evict" -l include-agent -d 'Also act on ds4-agent\'s explicit saves (sysprompt.kv, agent-session, agent-system)'
complete -c kvc -n "__fish_kvc_using_subcommand evict" -s n -l dry-run -d 'Show what would be done and change nothing (no lock, not even kvc\'s own state)'
complete -c kvc -n "__fish_kvc_using_subcommand evict" -s q -l quiet -d 'Print nothing on success (for cron); problems still go to stderr'
complete -c kvc -n "__fish_kvc_using_subcommand evict" -s y -l yes -d 'Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)'
complete -c kvc -n "__fish_kvc_using_subcommand evict" -l reject-different-quant -d 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)'
complete -c kvc -n "__fish_kvc_using_subcommand evict" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand evict" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand evict" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand rm" -s d -l dir -d 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand rm" -l wait -d 'Wait at most this long for another kvc\'s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)' -r
complete -c kvc -n "__fish_kvc_using_subcommand rm" -l max-delete -d 'Delete at most this much in one run, else nothing (exit 4): a share of the directory\'s bytes (25%), a size (10GiB) or a number of files (100)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand rm" -l now -d 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)' -r
complete -c kvc -n "__fish_kvc_using_subcommand rm" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand rm" -l include-agent -d 'Also act on ds4-agent\'s explicit saves (sysprompt.kv, agent-session, agent-system)'
complete -c kvc -n "__fish_kvc_using_subcommand rm" -s n -l dry-run -d 'Show what would be done and change nothing (no lock, not even kvc\'s own state)'
complete -c kvc -n "__fish_kvc_using_subcommand rm" -s q -l quiet -d 'Print nothing on success (for cron); problems still go to stderr'
complete -c kvc -n "__fish_kvc_using_subcommand rm" -s y -l yes -d 'Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)'
complete -c kvc -n "__fish_kvc_using_subcommand rm" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand rm" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand rm" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand gc" -s d -l dir -d 'Cache directory, as DIR' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand gc" -l temp-age -d 'Temp files of dead writers modified longer ago than this are stale (30m, 1h, 2d)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand gc" -l wait -d 'Wait at most this long for another kvc\'s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)' -r
complete -c kvc -n "__fish_kvc_using_subcommand gc" -l max-delete -d 'Delete at most this much in one run, else nothing (exit 4): a share of the directory\'s bytes (25%), a size (10GiB) or a number of files (100)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand gc" -l now -d 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)' -r
complete -c kvc -n "__fish_kvc_using_subcommand gc" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand gc" -s n -l dry-run -d 'Show what would be done and change nothing (no lock, not even kvc\'s own state)'
complete -c kvc -n "__fish_kvc_using_subcommand gc" -s q -l quiet -d 'Print nothing on success (for cron); problems still go to stderr'
complete -c kvc -n "__fish_kvc_using_subcommand gc" -s y -l yes -d 'Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)'
complete -c kvc -n "__fish_kvc_using_subcommand gc" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand gc" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand gc" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand stats" -s d -l dir -d 'A cache directory, as DIR (repeatable)' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand stats" -l budget -d 'Compare what the engine\'s budget counts with SIZE, and say what `kvc evict --budget SIZE` would delete' -r
complete -c kvc -n "__fish_kvc_using_subcommand stats" -l log -d 'ds4-server log to read (repeatable; `-` for standard input)' -r -F
complete -c kvc -n "__fish_kvc_using_subcommand stats" -l since -d 'Only log lines from WHEN on: 2026-08-05, 2026-08-05T14:00 (the log\'s clock) or a duration back from now (7d)' -r
complete -c kvc -n "__fish_kvc_using_subcommand stats" -l until -d 'Only log lines before WHEN (a date alone includes that day)' -r
complete -c kvc -n "__fish_kvc_using_subcommand stats" -l temp-age -d 'Temp files of dead writers modified longer ago than this are stale (30m, 1h, 2d)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand stats" -l policy -d 'Eviction order [default: the policy of the directory\'s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)' -r -f -a "ds4\t'ds4 mainline since ec6a82a (2026-05-26, ds4_kvstore.c at b030961): ((hits decayed + 1) × tokens) / size, ×2 for cold/evict/shutdown, superseded continued waypoints × (0.05 + 0.45·h)'
ds4-classic\t'ds4 up to 2026-05-25 (8d57664): ((hits decayed + 1) × tokens) / size'
lru\t'hanzo-engine (disk_kv_cache.rs, c8bcee7d5): oldest last_used first, unreadable headers first, readdir order for ties, never below 64 MiB'"
complete -c kvc -n "__fish_kvc_using_subcommand stats" -l engine -d 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads' -r -f -a "ds4\t'ds4 mainline since e8e8779 (2026-05-26): ds4-server, ds4-agent'
ds4-classic\t'ds4 up to 2026-05-25, before the payload ABI byte'
hanzo\t'hanzo-engine\'s disk KV spill'"
complete -c kvc -n "__fish_kvc_using_subcommand stats" -l now -d 'Evaluate scores and ages at this Unix time instead of now (reproducible output)' -r
complete -c kvc -n "__fish_kvc_using_subcommand stats" -l prometheus-file -d 'Write the node_exporter textfile format to PATH, atomically, mode 0644; print nothing else' -r -F
complete -c kvc -n "__fish_kvc_using_subcommand stats" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand stats" -l reject-different-quant -d 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)'
complete -c kvc -n "__fish_kvc_using_subcommand stats" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand stats" -l prometheus -d 'Write the node_exporter textfile format (metrics kvc_…) to standard output'
complete -c kvc -n "__fish_kvc_using_subcommand stats" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand stats" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand tree" -s d -l dir -d 'Cache directory, as DIR' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand tree" -l policy -d 'Eviction order [default: the policy of the directory\'s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)' -r -f -a "ds4\t'ds4 mainline since ec6a82a (2026-05-26, ds4_kvstore.c at b030961): ((hits decayed + 1) × tokens) / size, ×2 for cold/evict/shutdown, superseded continued waypoints × (0.05 + 0.45·h)'
ds4-classic\t'ds4 up to 2026-05-25 (8d57664): ((hits decayed + 1) × tokens) / size'
lru\t'hanzo-engine (disk_kv_cache.rs, c8bcee7d5): oldest last_used first, unreadable headers first, readdir order for ties, never below 64 MiB'"
complete -c kvc -n "__fish_kvc_using_subcommand tree" -l engine -d 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads' -r -f -a "ds4\t'ds4 mainline since e8e8779 (2026-05-26): ds4-server, ds4-agent'
ds4-classic\t'ds4 up to 2026-05-25, before the payload ABI byte'
hanzo\t'hanzo-engine\'s disk KV spill'"
complete -c kvc -n "__fish_kvc_using_subcommand tree" -l now -d 'Evaluate scores and ages at this Unix time instead of now (reproducible output)' -r
complete -c kvc -n "__fish_kvc_using_subcommand tree" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand tree" -l dot -d 'Write Graphviz DOT instead of a table (`kvc tree --dot | dot -Tsvg > tree.svg`)'
complete -c kvc -n "__fish_kvc_using_subcommand tree" -l no-title -d 'Do not show titles (each text\'s first user turn)'
complete -c kvc -n "__fish_kvc_using_subcommand tree" -l reject-different-quant -d 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)'
complete -c kvc -n "__fish_kvc_using_subcommand tree" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand tree" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand tree" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand report" -s d -l dir -d 'Cache directory, as DIR' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand report" -s o -l output -d 'HTML file to write (atomically, mode 0600)' -r -F
complete -c kvc -n "__fish_kvc_using_subcommand report" -l budget -d 'Budget to show the usage against (as `kvc stats --budget`)' -r
complete -c kvc -n "__fish_kvc_using_subcommand report" -l log -d 'ds4-server log to read (repeatable; `-` for standard input)' -r -F
complete -c kvc -n "__fish_kvc_using_subcommand report" -l since -d 'Only log lines from WHEN on: 2026-08-05, 2026-08-05T14:00 (the log\'s clock) or a duration back from now (7d)' -r
complete -c kvc -n "__fish_kvc_using_subcommand report" -l until -d 'Only log lines before WHEN (a date alone includes that day)' -r
complete -c kvc -n "__fish_kvc_using_subcommand report" -l temp-age -d 'Temp files of dead writers modified longer ago than this are stale (30m, 1h, 2d)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand report" -l policy -d 'Eviction order [default: the policy of the directory\'s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)' -r -f -a "ds4\t'ds4 mainline since ec6a82a (2026-05-26, ds4_kvstore.c at b030961): ((hits decayed + 1) × tokens) / size, ×2 for cold/evict/shutdown, superseded continued waypoints × (0.05 + 0.45·h)'
ds4-classic\t'ds4 up to 2026-05-25 (8d57664): ((hits decayed + 1) × tokens) / size'
lru\t'hanzo-engine (disk_kv_cache.rs, c8bcee7d5): oldest last_used first, unreadable headers first, readdir order for ties, never below 64 MiB'"
complete -c kvc -n "__fish_kvc_using_subcommand report" -l engine -d 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads' -r -f -a "ds4\t'ds4 mainline since e8e8779 (2026-05-26): ds4-server, ds4-agent'
ds4-classic\t'ds4 up to 2026-05-25, before the payload ABI byte'
hanzo\t'hanzo-engine\'s disk KV spill'"
complete -c kvc -n "__fish_kvc_using_subcommand report" -l now -d 'Evaluate scores and ages at this Unix time instead of now (reproducible output)' -r
complete -c kvc -n "__fish_kvc_using_subcommand report" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand report" -l reject-different-quant -d 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)'
complete -c kvc -n "__fish_kvc_using_subcommand report" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand report" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand log" -s d -l dir -d 'Cache directory, as DIR' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand log" -l op -d 'Only records of this op (repeatable: any of them): evict, rm, gc, quarantine, import, replace, trailer-set, trailer-prune, trailer-strip' -r
complete -c kvc -n "__fish_kvc_using_subcommand log" -l key -d 'Only records whose key starts with PREFIX (case-insensitive), or whose file name (gc\'s temp files) does' -r
complete -c kvc -n "__fish_kvc_using_subcommand log" -l since -d 'Only records from WHEN on: 2026-08-05, 2026-08-05T14:00 (UTC) or a duration back from now (30d, 12h)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand log" -s n -l limit -d 'Only the newest N records (after the other filters)' -r
complete -c kvc -n "__fish_kvc_using_subcommand log" -l now -d 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)' -r
complete -c kvc -n "__fish_kvc_using_subcommand log" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand log" -s r -l reverse -d 'Oldest first'
complete -c kvc -n "__fish_kvc_using_subcommand log" -s l -l long -d 'Full keys'
complete -c kvc -n "__fish_kvc_using_subcommand log" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand log" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand log" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand export" -l reason -d 'Only checkpoints saved for this reason (repeatable: any of them)' -r
complete -c kvc -n "__fish_kvc_using_subcommand export" -l min-tokens -d 'Only checkpoints of at least N tokens' -r
complete -c kvc -n "__fish_kvc_using_subcommand export" -l used-within -d 'Only checkpoints used (or, never used, created) within DURATION, e.g. 2d, 12h' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand export" -l quant -d 'Only checkpoints with these routed-expert quant bits' -r
complete -c kvc -n "__fish_kvc_using_subcommand export" -s o -l output -d 'Bundle file to write (atomically), or `-` for standard output (not a terminal)' -r -F
complete -c kvc -n "__fish_kvc_using_subcommand export" -s d -l dir -d 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand export" -l now -d 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)' -r
complete -c kvc -n "__fish_kvc_using_subcommand export" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand export" -l all -d 'Every checkpoint of the directory (filters still apply; a KEY argument may then only be the directory)'
complete -c kvc -n "__fish_kvc_using_subcommand export" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand export" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand import" -l on-conflict -d 'When the target already has a checkpoint with the same key (identical bytes count as present; unsafe next to a running hanzo-engine, see below)' -r -f -a "skip\t'Keep the existing checkpoint'
replace\t'Overwrite it'
newer\t'Keep whichever has the later last_used (ties keep the existing)'"
complete -c kvc -n "__fish_kvc_using_subcommand import" -l budget -d 'Afterwards, evict (as `kvc evict` does) until the checkpoints fit in SIZE (e.g. 40G, 512MiB), never evicting what was just imported' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand import" -l wait -d 'Wait at most this long for another kvc\'s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)' -r
complete -c kvc -n "__fish_kvc_using_subcommand import" -s d -l dir -d 'Cache directory, as DIR' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand import" -l policy -d 'Eviction order [default: the policy of the directory\'s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)' -r -f -a "ds4\t'ds4 mainline since ec6a82a (2026-05-26, ds4_kvstore.c at b030961): ((hits decayed + 1) × tokens) / size, ×2 for cold/evict/shutdown, superseded continued waypoints × (0.05 + 0.45·h)'
ds4-classic\t'ds4 up to 2026-05-25 (8d57664): ((hits decayed + 1) × tokens) / size'
lru\t'hanzo-engine (disk_kv_cache.rs, c8bcee7d5): oldest last_used first, unreadable headers first, readdir order for ties, never below 64 MiB'"
complete -c kvc -n "__fish_kvc_using_subcommand import" -l engine -d 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads' -r -f -a "ds4\t'ds4 mainline since e8e8779 (2026-05-26): ds4-server, ds4-agent'
ds4-classic\t'ds4 up to 2026-05-25, before the payload ABI byte'
hanzo\t'hanzo-engine\'s disk KV spill'"
complete -c kvc -n "__fish_kvc_using_subcommand import" -l now -d 'Evaluate scores and ages at this Unix time instead of now (reproducible output)' -r
complete -c kvc -n "__fish_kvc_using_subcommand import" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand import" -l reset-stats -d 'Zero the hit counts and set last_used to now in the installed copies'
complete -c kvc -n "__fish_kvc_using_subcommand import" -l include-agent -d 'With replace or newer, also replace ds4-agent\'s explicit saves (sysprompt.kv, agent-system, agent-session), which are kept otherwise'
complete -c kvc -n "__fish_kvc_using_subcommand import" -s n -l dry-run -d 'Show what would be done and change nothing (no lock, not even kvc\'s own state)'
complete -c kvc -n "__fish_kvc_using_subcommand import" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand import" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and not __fish_seen_subcommand_from ls export set prune strip help" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and not __fish_seen_subcommand_from ls export set prune strip help" -s h -l help -d 'Print help'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and not __fish_seen_subcommand_from ls export set prune strip help" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and not __fish_seen_subcommand_from ls export set prune strip help" -f -a "ls" -d 'List the entries of a checkpoint\'s tool-id map, and which of them ds4 uses (the last entry of an id wins)'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and not __fish_seen_subcommand_from ls export set prune strip help" -f -a "export" -d 'Write a checkpoint\'s tool-id map to standard output as JSON (shadowed entries marked)'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and not __fish_seen_subcommand_from ls export set prune strip help" -f -a "set" -d 'Replace the tool-id map of checkpoints with one given as JSON'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and not __fish_seen_subcommand_from ls export set prune strip help" -f -a "prune" -d 'Drop map entries ds4 never uses (shadowed ids, NUL-first) or whose DSML block is not in the text'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and not __fish_seen_subcommand_from ls export set prune strip help" -f -a "strip" -d 'Remove the tool-id map and clear ext bit 0 (also repairs a broken trailer)'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and not __fish_seen_subcommand_from ls export set prune strip help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from ls" -s d -l dir -d 'Cache directory, as DIR' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from ls" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from ls" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from export" -s d -l dir -d 'Cache directory, as DIR' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from export" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from export" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from set" -l from -d 'JSON file with the map, or `-` for standard input' -r -F
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from set" -l wait -d 'Wait at most this long for another kvc\'s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)' -r
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from set" -l now -d 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)' -r
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from set" -l method -d 'How to write the new trailer' -r -f -a "auto\t'Clone where the filesystem can; else in place if that is strictly old-or-new (adding or removing a map), copy if not (replacing one)'
in-place\t'Ordered in-place writes and fsyncs, never a copy; replacing a map passes through a valid state without one'
clone\t'Reflink clone and swap; fails where the filesystem cannot clone'
copy\t'Clone, else copy the whole file, then swap: never a state without the map'"
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from set" -s d -l dir -d 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from set" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from set" -l allow-missing -d 'Store entries whose DSML block does not occur in the text'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from set" -s n -l dry-run -d 'Show what would be done and change nothing (no lock, not even kvc\'s own state)'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from set" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from set" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from prune" -l wait -d 'Wait at most this long for another kvc\'s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)' -r
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from prune" -l now -d 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)' -r
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from prune" -l method -d 'How to write the new trailer' -r -f -a "auto\t'Clone where the filesystem can; else in place if that is strictly old-or-new (adding or removing a map), copy if not (replacing one)'
in-place\t'Ordered in-place writes and fsyncs, never a copy; replacing a map passes through a valid state without one'
clone\t'Reflink clone and swap; fails where the filesystem cannot clone'
copy\t'Clone, else copy the whole file, then swap: never a state without the map'"
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from prune" -s d -l dir -d 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from prune" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from prune" -l all -d 'Every checkpoint of the directory that has something to rewrite (a KEY argument may then only be the directory)'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from prune" -s n -l dry-run -d 'Show what would be done and change nothing (no lock, not even kvc\'s own state)'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from prune" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from prune" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from strip" -l wait -d 'Wait at most this long for another kvc\'s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)' -r
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from strip" -l now -d 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)' -r
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from strip" -l method -d 'How to write the new trailer' -r -f -a "auto\t'Clone where the filesystem can; else in place if that is strictly old-or-new (adding or removing a map), copy if not (replacing one)'
in-place\t'Ordered in-place writes and fsyncs, never a copy; replacing a map passes through a valid state without one'
clone\t'Reflink clone and swap; fails where the filesystem cannot clone'
copy\t'Clone, else copy the whole file, then swap: never a state without the map'"
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from strip" -s d -l dir -d 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from strip" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from strip" -l all -d 'Every checkpoint of the directory that has something to rewrite (a KEY argument may then only be the directory)'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from strip" -s n -l dry-run -d 'Show what would be done and change nothing (no lock, not even kvc\'s own state)'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from strip" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from strip" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from strip" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List the entries of a checkpoint\'s tool-id map, and which of them ds4 uses (the last entry of an id wins)'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write a checkpoint\'s tool-id map to standard output as JSON (shadowed entries marked)'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from help" -f -a "set" -d 'Replace the tool-id map of checkpoints with one given as JSON'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from help" -f -a "prune" -d 'Drop map entries ds4 never uses (shadowed ids, NUL-first) or whose DSML block is not in the text'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from help" -f -a "strip" -d 'Remove the tool-id map and clear ext bit 0 (also repairs a broken trailer)'
complete -c kvc -n "__fish_kvc_using_subcommand trailer; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kvc -n "__fish_kvc_using_subcommand completions" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand completions" -l dynamic -d 'Print the registration script of dynamic completion instead: it asks kvc itself, so keys complete from the cache directory (the --dir typed, else $KVC_DIR, else ~/.ds4/kvcache) and a number typed for a size to its units'
complete -c kvc -n "__fish_kvc_using_subcommand completions" -s h -l help -d 'Print help'
complete -c kvc -n "__fish_kvc_using_subcommand completions" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand man" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand man" -s h -l help -d 'Print help'
complete -c kvc -n "__fish_kvc_using_subcommand man" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand match" -s d -l dir -d 'Cache directory, as DIR' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand match" -l ctx -d 'Live context size, as ds4-server\'s --ctx [default: 32768]' -r
complete -c kvc -n "__fish_kvc_using_subcommand match" -l model-id -d 'Live model id: 0 flash, 1 pro, 2 glm-5.2 [default: 0]' -r
complete -c kvc -n "__fish_kvc_using_subcommand match" -l model -d 'Live model by name: flash, pro, glm-5.2, laguna, qwen3.8' -r
complete -c kvc -n "__fish_kvc_using_subcommand match" -l quant -d 'Live routed-expert quant bits (2 or 4); compared only with --reject-different-quant' -r
complete -c kvc -n "__fish_kvc_using_subcommand match" -l min-tokens -d 'Minimum checkpoint tokens, as ds4-server\'s --kv-cache-min-tokens [default: 512]' -r
complete -c kvc -n "__fish_kvc_using_subcommand match" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand match" -l reject-different-quant -d 'As ds4-server\'s --kv-cache-reject-different-quant: skip checkpoints of other quant bits'
complete -c kvc -n "__fish_kvc_using_subcommand match" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand match" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand match" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand push" -l reason -d 'Only checkpoints saved for this reason (repeatable: any of them)' -r
complete -c kvc -n "__fish_kvc_using_subcommand push" -l min-tokens -d 'Only checkpoints of at least N tokens' -r
complete -c kvc -n "__fish_kvc_using_subcommand push" -l used-within -d 'Only checkpoints used (or, never used, created) within DURATION, e.g. 2d, 12h' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand push" -l quant -d 'Only checkpoints with these routed-expert quant bits' -r
complete -c kvc -n "__fish_kvc_using_subcommand push" -l exclude-text -d 'Never send a checkpoint whose stored text matches REGEX (repeatable; checked before upload)' -r
complete -c kvc -n "__fish_kvc_using_subcommand push" -l remote -d 'The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand push" -s d -l dir -d 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand push" -l engine -d 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads' -r -f -a "ds4\t'ds4 mainline since e8e8779 (2026-05-26): ds4-server, ds4-agent'
ds4-classic\t'ds4 up to 2026-05-25, before the payload ABI byte'
hanzo\t'hanzo-engine\'s disk KV spill'"
complete -c kvc -n "__fish_kvc_using_subcommand push" -l wait -d 'Wait at most this long for another kvc\'s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)' -r
complete -c kvc -n "__fish_kvc_using_subcommand push" -l now -d 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)' -r
complete -c kvc -n "__fish_kvc_using_subcommand push" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand push" -l all -d 'Every checkpoint of the directory (filters still apply)'
complete -c kvc -n "__fish_kvc_using_subcommand push" -l read-only -d 'Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull'
complete -c kvc -n "__fish_kvc_using_subcommand push" -l allow-http -d 'Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)'
complete -c kvc -n "__fish_kvc_using_subcommand push" -s n -l dry-run -d 'Show what would be done and change nothing (no lock, not even kvc\'s own state)'
complete -c kvc -n "__fish_kvc_using_subcommand push" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand push" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand push" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l match -d 'The checkpoint ds4 mainline would load for this rendered prompt (a file; `-` for standard input)' -r -F
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l model -d 'Only this model\'s checkpoints (flash, pro, glm-5.2, …, or a dialect such as d20: the remote\'s namespaces); with --match, the live model' -r
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l reason -d 'Only checkpoints saved for this reason (repeatable: any of them)' -r
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l min-tokens -d 'Only checkpoints of at least N tokens (with --match: ds4-server\'s --kv-cache-min-tokens, default 512)' -r
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l used-within -d 'Only checkpoints used (or, never used, created) within DURATION, e.g. 2d, 12h' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l quant -d 'Only checkpoints with these routed-expert quant bits (with --match: as --kv-cache-reject-different-quant)' -r
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l ctx -d 'With --match: the live context size, as ds4-server\'s --ctx [default: 32768]' -r
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l on-conflict -d 'When the cache already has another copy under the key (the same text, payload and trailers count as present)' -r -f -a "skip\t'Keep the existing checkpoint'
replace\t'Overwrite it'
newer\t'Keep whichever has the later last_used (ties keep the existing)'"
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l budget -d 'Afterwards, evict (as `kvc evict` does) until the checkpoints fit in SIZE, never evicting what was just pulled' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l remote -d 'The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand pull" -s d -l dir -d 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]' -r -f -a "(__fish_complete_directories)"
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l policy -d 'Eviction order [default: the policy of the directory\'s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)' -r -f -a "ds4\t'ds4 mainline since ec6a82a (2026-05-26, ds4_kvstore.c at b030961): ((hits decayed + 1) × tokens) / size, ×2 for cold/evict/shutdown, superseded continued waypoints × (0.05 + 0.45·h)'
ds4-classic\t'ds4 up to 2026-05-25 (8d57664): ((hits decayed + 1) × tokens) / size'
lru\t'hanzo-engine (disk_kv_cache.rs, c8bcee7d5): oldest last_used first, unreadable headers first, readdir order for ties, never below 64 MiB'"
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l engine -d 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads' -r -f -a "ds4\t'ds4 mainline since e8e8779 (2026-05-26): ds4-server, ds4-agent'
ds4-classic\t'ds4 up to 2026-05-25, before the payload ABI byte'
hanzo\t'hanzo-engine\'s disk KV spill'"
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l now -d 'Evaluate scores and ages at this Unix time instead of now (reproducible output)' -r
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l wait -d 'Wait at most this long for another kvc\'s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)' -r
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l all -d 'Every checkpoint of the remote (filters still apply)'
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l reset-stats -d 'Zero the hit counts and set last_used to now in the installed copies'
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l include-agent -d 'With replace or newer, also replace ds4-agent\'s explicit saves (sysprompt.kv, agent-system, agent-session)'
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l read-only -d 'Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull'
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l allow-http -d 'Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)'
complete -c kvc -n "__fish_kvc_using_subcommand pull" -s n -l dry-run -d 'Show what would be done and change nothing (no lock, not even kvc\'s own state)'
complete -c kvc -n "__fish_kvc_using_subcommand pull" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand pull" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand pull" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and not __fish_seen_subcommand_from ls rm gc help" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand remote; and not __fish_seen_subcommand_from ls rm gc help" -s h -l help -d 'Print help'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and not __fish_seen_subcommand_from ls rm gc help" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and not __fish_seen_subcommand_from ls rm gc help" -f -a "ls" -d 'List a remote\'s checkpoints with `kvc ls`\'s columns and JSON, one table per namespace'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and not __fish_seen_subcommand_from ls rm gc help" -f -a "rm" -d 'Delete checkpoints from a remote by key'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and not __fish_seen_subcommand_from ls rm gc help" -f -a "gc" -d 'Trim a remote by age and size, and abort abandoned multipart uploads'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and not __fish_seen_subcommand_from ls rm gc help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -l model -d 'Only this namespace (flash, pro, glm-5.2, …, or a dialect such as d20)' -r
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -l sort -d 'Order of the rows' -r -f -a "used\t'Last use, newest first'
created\t'Creation time, newest first'
size\t'File size, largest first'
tokens\t'Token count, largest first'
hits\t'Hit count, largest first'
score\t'Eviction order: the next victim first'
key\t'Key, ascending'"
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -l remote -d 'The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -l policy -d 'Eviction order [default: the policy of the directory\'s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)' -r -f -a "ds4\t'ds4 mainline since ec6a82a (2026-05-26, ds4_kvstore.c at b030961): ((hits decayed + 1) × tokens) / size, ×2 for cold/evict/shutdown, superseded continued waypoints × (0.05 + 0.45·h)'
ds4-classic\t'ds4 up to 2026-05-25 (8d57664): ((hits decayed + 1) × tokens) / size'
lru\t'hanzo-engine (disk_kv_cache.rs, c8bcee7d5): oldest last_used first, unreadable headers first, readdir order for ties, never below 64 MiB'"
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -l engine -d 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads' -r -f -a "ds4\t'ds4 mainline since e8e8779 (2026-05-26): ds4-server, ds4-agent'
ds4-classic\t'ds4 up to 2026-05-25, before the payload ABI byte'
hanzo\t'hanzo-engine\'s disk KV spill'"
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -l now -d 'Evaluate scores and ages at this Unix time instead of now (reproducible output)' -r
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print only the full keys, one per line'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -s r -l reverse -d 'Reverse the order'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -s l -l long -d 'Full keys, absolute times, model id and payload ABI'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -l no-title -d 'Do not show titles'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -l read-only -d 'Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -l allow-http -d 'Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -l reject-different-quant -d 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from rm" -l model -d 'Only in this namespace (flash, pro, glm-5.2, …, d20)' -r
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from rm" -l remote -d 'The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from rm" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from rm" -l read-only -d 'Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from rm" -l allow-http -d 'Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from rm" -s n -l dry-run -d 'Show what would be done and change nothing (no lock, not even kvc\'s own state)'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from rm" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from rm" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from gc" -l max-age -d 'Delete checkpoints not seen in use for longer than DURATION (30d, 12h)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from gc" -l max-size -d 'Then delete the oldest until the checkpoints take at most SIZE (500G, 1.5T)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from gc" -l uploads-older-than -d 'Abort multipart uploads started longer ago than DURATION' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from gc" -l model -d 'Only in this namespace (flash, pro, glm-5.2, …, d20)' -r
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from gc" -l remote -d 'The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)' -r -f
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from gc" -l now -d 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)' -r
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from gc" -l color -d 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb' -r -f -a "auto\t''
always\t''
never\t''"
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from gc" -l read-only -d 'Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from gc" -l allow-http -d 'Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from gc" -s n -l dry-run -d 'Show what would be done and change nothing (no lock, not even kvc\'s own state)'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from gc" -l json -d 'Print JSON (schema in doc/GUIDE.md) instead of a table'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from gc" -s h -l help -d 'Print help'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from gc" -s V -l version -d 'Print version'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List a remote\'s checkpoints with `kvc ls`\'s columns and JSON, one table per namespace'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Delete checkpoints from a remote by key'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from help" -f -a "gc" -d 'Trim a remote by age and size, and abort abandoned multipart uploads'
complete -c kvc -n "__fish_kvc_using_subcommand remote; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "ls" -d 'List the checkpoints of cache directories, with their eviction rank'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "show" -d 'Show every header field, the trailer and the payload header of one checkpoint'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "cat" -d 'Write the stored prompt text of a checkpoint, raw, to a pipe or file'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "verify" -d 'Check every checkpoint for corruption, truncation and mislabelling (exit 1 on any error)'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "evict" -d 'Delete checkpoints until the cache fits a budget, next victim first'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "rm" -d 'Remove named checkpoints'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "gc" -d 'Remove temp files left by crashed writers, and empty kvc state'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "stats" -d 'One screen about cache directories: what they hold, what was hit, what each command would free'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "tree" -d 'The prefix forest: which checkpoint\'s text extends which, with the bytes that hold no prefix of their own'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "report" -d 'Write one self-contained HTML file with charts (SVG) of a cache directory and, with --log, of its engine\'s activity'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "log" -d 'Show the journal of what kvc deleted, installed, quarantined or rewrote, oldest first'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "export" -d 'Write checkpoints to a bundle (a tar stream with a digest per file) for `kvc import`'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "import" -d 'Install the checkpoints of a bundle, verifying every byte before it becomes visible'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "trailer" -d 'Inspect and rewrite the tool-id map trailers of checkpoints (crash-safe)'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "completions" -d 'Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell)'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "man" -d 'Write the man pages (kvc.1 and one per command) into DIR'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "match" -d 'Explain a cache hit or miss offline: which checkpoint ds4 loads for a prompt, and why every other one loses'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "push" -d 'Upload checkpoints a remote (S3-compatible object storage) lacks, checked first'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "pull" -d 'Download checkpoints from a remote into a cache, verifying every byte before it becomes visible'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "remote" -d 'List, remove and trim a remote\'s checkpoints'
complete -c kvc -n "__fish_kvc_using_subcommand help; and not __fish_seen_subcommand_from ls show cat verify evict rm gc stats tree report log export import trailer completions man match push pull remote help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kvc -n "__fish_kvc_using_subcommand help; and __fish_seen_subcommand_from trailer" -f -a "ls" -d 'List the entries of a checkpoint\'s tool-id map, and which of them ds4 uses (the last entry of an id wins)'
complete -c kvc -n "__fish_kvc_using_subcommand help; and __fish_seen_subcommand_from trailer" -f -a "export" -d 'Write a checkpoint\'s tool-id map to standard output as JSON (shadowed entries marked)'
complete -c kvc -n "__fish_kvc_using_subcommand help; and __fish_seen_subcommand_from trailer" -f -a "set" -d 'Replace the tool-id map of checkpoints with one given as JSON'
complete -c kvc -n "__fish_kvc_using_subcommand help; and __fish_seen_subcommand_from trailer" -f -a "prune" -d 'Drop map entries ds4 never uses (shadowed ids, NUL-first) or whose DSML block is not in the text'
complete -c kvc -n "__fish_kvc_using_subcommand help; and __fish_seen_subcommand_from trailer" -f -a "strip" -d 'Remove the tool-id map and clear ext bit 0 (also repairs a broken trailer)'
complete -c kvc -n "__fish_kvc_using_subcommand help; and __fish_seen_subcommand_from remote" -f -a "ls" -d 'List a remote\'s checkpoints with `kvc ls`\'s columns and JSON, one table per namespace'
complete -c kvc -n "__fish_kvc_using_subcommand help; and __fish_seen_subcommand_from remote" -f -a "rm" -d 'Delete checkpoints from a remote by key'
complete -c kvc -n "__fish_kvc_using_subcommand help; and __fish_seen_subcommand_from remote" -f -a "gc" -d 'Trim a remote by age and size, and abort abandoned multipart uploads'
