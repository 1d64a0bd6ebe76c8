
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'kvc' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'kvc'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'kvc' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the checkpoints of cache directories, with their eviction rank')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show every header field, the trailer and the payload header of one checkpoint')
            [CompletionResult]::new('cat', 'cat', [CompletionResultType]::ParameterValue, 'Write the stored prompt text of a checkpoint, raw, to a pipe or file')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check every checkpoint for corruption, truncation and mislabelling (exit 1 on any error)')
            [CompletionResult]::new('evict', 'evict', [CompletionResultType]::ParameterValue, 'Delete checkpoints until the cache fits a budget, next victim first')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Remove named checkpoints')
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Remove temp files left by crashed writers, and empty kvc state')
            [CompletionResult]::new('stats', 'stats', [CompletionResultType]::ParameterValue, 'One screen about cache directories: what they hold, what was hit, what each command would free')
            [CompletionResult]::new('tree', 'tree', [CompletionResultType]::ParameterValue, 'The prefix forest: which checkpoint''s text extends which, with the bytes that hold no prefix of their own')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Write one self-contained HTML file with charts (SVG) of a cache directory and, with --log, of its engine''s activity')
            [CompletionResult]::new('log', 'log', [CompletionResultType]::ParameterValue, 'Show the journal of what kvc deleted, installed, quarantined or rewrote, oldest first')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write checkpoints to a bundle (a tar stream with a digest per file) for `kvc import`')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Install the checkpoints of a bundle, verifying every byte before it becomes visible')
            [CompletionResult]::new('trailer', 'trailer', [CompletionResultType]::ParameterValue, 'Inspect and rewrite the tool-id map trailers of checkpoints (crash-safe)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write the man pages (kvc.1 and one per command) into DIR')
            [CompletionResult]::new('match', 'match', [CompletionResultType]::ParameterValue, 'Explain a cache hit or miss offline: which checkpoint ds4 loads for a prompt, and why every other one loses')
            [CompletionResult]::new('push', 'push', [CompletionResultType]::ParameterValue, 'Upload checkpoints a remote (S3-compatible object storage) lacks, checked first')
            [CompletionResult]::new('pull', 'pull', [CompletionResultType]::ParameterValue, 'Download checkpoints from a remote into a cache, verifying every byte before it becomes visible')
            [CompletionResult]::new('remote', 'remote', [CompletionResultType]::ParameterValue, 'List, remove and trim a remote''s checkpoints')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kvc;ls' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'A cache directory, as DIR (repeatable)')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'A cache directory, as DIR (repeatable)')
            [CompletionResult]::new('--sort', '--sort', [CompletionResultType]::ParameterName, 'Order of the rows')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)')
            [CompletionResult]::new('--engine', '--engine', [CompletionResultType]::ParameterName, 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Evaluate scores and ages at this Unix time instead of now (reproducible output)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the full keys, one per line, in the listing''s order (for pipes: `kvc ls -q | head -3`)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the full keys, one per line, in the listing''s order (for pipes: `kvc ls -q | head -3`)')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Reverse the order')
            [CompletionResult]::new('--reverse', '--reverse', [CompletionResultType]::ParameterName, 'Reverse the order')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Full keys, absolute times, model id and payload ABI')
            [CompletionResult]::new('--long', '--long', [CompletionResultType]::ParameterName, 'Full keys, absolute times, model id and payload ABI')
            [CompletionResult]::new('--no-title', '--no-title', [CompletionResultType]::ParameterName, 'Do not read the texts: no titles, no key check (reads 52 bytes a file)')
            [CompletionResult]::new('--reject-different-quant', '--reject-different-quant', [CompletionResultType]::ParameterName, 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;show' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)')
            [CompletionResult]::new('--engine', '--engine', [CompletionResultType]::ParameterName, 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Evaluate scores and ages at this Unix time instead of now (reproducible output)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--text', '--text', [CompletionResultType]::ParameterName, 'Also show the whole text, with control characters escaped')
            [CompletionResult]::new('--reject-different-quant', '--reject-different-quant', [CompletionResultType]::ParameterName, 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;cat' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Write the raw text even when standard output is a terminal')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;verify' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'A cache directory, as PATH (repeatable)')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'A cache directory, as PATH (repeatable)')
            [CompletionResult]::new('--sample', '--sample', [CompletionResultType]::ParameterName, 'Deep-check only this percentage of checkpoints, the same ones every run (implies --deep)')
            [CompletionResult]::new('--allow', '--allow', [CompletionResultType]::ParameterName, 'Findings of this code do not count for the exit status or --strict, and are not quarantined: listed apart, counted in the summary (repeatable; codes in --help)')
            [CompletionResult]::new('--temp-age', '--temp-age', [CompletionResultType]::ParameterName, 'Temp files of dead writers modified longer ago than this are stale (30m, 1h, 2d)')
            [CompletionResult]::new('--engine', '--engine', [CompletionResultType]::ParameterName, 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads')
            [CompletionResult]::new('--quarantine', '--quarantine', [CompletionResultType]::ParameterName, 'Move every file with an error into DIR (created 0700) with a <name>.why file; never deletes')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--deep', '--deep', [CompletionResultType]::ParameterName, 'Also read every payload whole: token ids below vocab, finite logits, every byte readable')
            [CompletionResult]::new('-a', '-a', [CompletionResultType]::ParameterName, 'Also report stray files (names no engine reads)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Also report stray files (names no engine reads)')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'Treat warnings as errors for the exit status')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;evict' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'Evict until what the engine''s budget counts takes at most SIZE (8GiB, 1.5G, 500MB)')
            [CompletionResult]::new('--older-than', '--older-than', [CompletionResultType]::ParameterName, 'Also evict checkpoints unused for longer than DURATION (30d, 12h), budget or not')
            [CompletionResult]::new('--protect', '--protect', [CompletionResultType]::ParameterName, 'Never evict this checkpoint (key, unique prefix, `sysprompt` or path); repeatable')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)')
            [CompletionResult]::new('--max-delete', '--max-delete', [CompletionResultType]::ParameterName, 'Delete at most this much in one run, else nothing (exit 4): a share of the directory''s bytes (25%), a size (10GiB) or a number of files (100)')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)')
            [CompletionResult]::new('--engine', '--engine', [CompletionResultType]::ParameterName, 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Evaluate scores and ages at this Unix time instead of now (reproducible output)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--include-unloadable', '--include-unloadable', [CompletionResultType]::ParameterName, 'Also delete what the engine never loads: under ds4 the readable checkpoints outside its population (other payload ABI, quant, version; sysprompt.kv with --include-agent); under hanzo-engine the *.kv entries it counts that kvc cannot read. Never foreign files, links or directories')
            [CompletionResult]::new('--include-agent', '--include-agent', [CompletionResultType]::ParameterName, 'Also act on ds4-agent''s explicit saves (sysprompt.kv, agent-session, agent-system)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success (for cron); problems still go to stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success (for cron); problems still go to stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)')
            [CompletionResult]::new('--reject-different-quant', '--reject-different-quant', [CompletionResultType]::ParameterName, 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;rm' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)')
            [CompletionResult]::new('--max-delete', '--max-delete', [CompletionResultType]::ParameterName, 'Delete at most this much in one run, else nothing (exit 4): a share of the directory''s bytes (25%), a size (10GiB) or a number of files (100)')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--include-agent', '--include-agent', [CompletionResultType]::ParameterName, 'Also act on ds4-agent''s explicit saves (sysprompt.kv, agent-session, agent-system)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success (for cron); problems still go to stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success (for cron); problems still go to stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;gc' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--temp-age', '--temp-age', [CompletionResultType]::ParameterName, 'Temp files of dead writers modified longer ago than this are stale (30m, 1h, 2d)')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)')
            [CompletionResult]::new('--max-delete', '--max-delete', [CompletionResultType]::ParameterName, 'Delete at most this much in one run, else nothing (exit 4): a share of the directory''s bytes (25%), a size (10GiB) or a number of files (100)')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success (for cron); problems still go to stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success (for cron); problems still go to stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask on a terminal before deleting more than 10% of a directory; for evict, also lift its own limit of 50% (an explicit --max-delete still applies)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;stats' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'A cache directory, as DIR (repeatable)')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'A cache directory, as DIR (repeatable)')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'Compare what the engine''s budget counts with SIZE, and say what `kvc evict --budget SIZE` would delete')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'ds4-server log to read (repeatable; `-` for standard input)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only log lines from WHEN on: 2026-08-05, 2026-08-05T14:00 (the log''s clock) or a duration back from now (7d)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Only log lines before WHEN (a date alone includes that day)')
            [CompletionResult]::new('--temp-age', '--temp-age', [CompletionResultType]::ParameterName, 'Temp files of dead writers modified longer ago than this are stale (30m, 1h, 2d)')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)')
            [CompletionResult]::new('--engine', '--engine', [CompletionResultType]::ParameterName, 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Evaluate scores and ages at this Unix time instead of now (reproducible output)')
            [CompletionResult]::new('--prometheus-file', '--prometheus-file', [CompletionResultType]::ParameterName, 'Write the node_exporter textfile format to PATH, atomically, mode 0644; print nothing else')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--reject-different-quant', '--reject-different-quant', [CompletionResultType]::ParameterName, 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('--prometheus', '--prometheus', [CompletionResultType]::ParameterName, 'Write the node_exporter textfile format (metrics kvc_…) to standard output')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;tree' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)')
            [CompletionResult]::new('--engine', '--engine', [CompletionResultType]::ParameterName, 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Evaluate scores and ages at this Unix time instead of now (reproducible output)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--dot', '--dot', [CompletionResultType]::ParameterName, 'Write Graphviz DOT instead of a table (`kvc tree --dot | dot -Tsvg > tree.svg`)')
            [CompletionResult]::new('--no-title', '--no-title', [CompletionResultType]::ParameterName, 'Do not show titles (each text''s first user turn)')
            [CompletionResult]::new('--reject-different-quant', '--reject-different-quant', [CompletionResultType]::ParameterName, 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;report' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'HTML file to write (atomically, mode 0600)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'HTML file to write (atomically, mode 0600)')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'Budget to show the usage against (as `kvc stats --budget`)')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'ds4-server log to read (repeatable; `-` for standard input)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only log lines from WHEN on: 2026-08-05, 2026-08-05T14:00 (the log''s clock) or a duration back from now (7d)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Only log lines before WHEN (a date alone includes that day)')
            [CompletionResult]::new('--temp-age', '--temp-age', [CompletionResultType]::ParameterName, 'Temp files of dead writers modified longer ago than this are stale (30m, 1h, 2d)')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)')
            [CompletionResult]::new('--engine', '--engine', [CompletionResultType]::ParameterName, 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Evaluate scores and ages at this Unix time instead of now (reproducible output)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--reject-different-quant', '--reject-different-quant', [CompletionResultType]::ParameterName, 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;log' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--op', '--op', [CompletionResultType]::ParameterName, 'Only records of this op (repeatable: any of them): evict, rm, gc, quarantine, import, replace, trailer-set, trailer-prune, trailer-strip')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Only records whose key starts with PREFIX (case-insensitive), or whose file name (gc''s temp files) does')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only records from WHEN on: 2026-08-05, 2026-08-05T14:00 (UTC) or a duration back from now (30d, 12h)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Only the newest N records (after the other filters)')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Only the newest N records (after the other filters)')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Oldest first')
            [CompletionResult]::new('--reverse', '--reverse', [CompletionResultType]::ParameterName, 'Oldest first')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Full keys')
            [CompletionResult]::new('--long', '--long', [CompletionResultType]::ParameterName, 'Full keys')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;export' {
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Only checkpoints saved for this reason (repeatable: any of them)')
            [CompletionResult]::new('--min-tokens', '--min-tokens', [CompletionResultType]::ParameterName, 'Only checkpoints of at least N tokens')
            [CompletionResult]::new('--used-within', '--used-within', [CompletionResultType]::ParameterName, 'Only checkpoints used (or, never used, created) within DURATION, e.g. 2d, 12h')
            [CompletionResult]::new('--quant', '--quant', [CompletionResultType]::ParameterName, 'Only checkpoints with these routed-expert quant bits')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Bundle file to write (atomically), or `-` for standard output (not a terminal)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Bundle file to write (atomically), or `-` for standard output (not a terminal)')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every checkpoint of the directory (filters still apply; a KEY argument may then only be the directory)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;import' {
            [CompletionResult]::new('--on-conflict', '--on-conflict', [CompletionResultType]::ParameterName, 'When the target already has a checkpoint with the same key (identical bytes count as present; unsafe next to a running hanzo-engine, see below)')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'Afterwards, evict (as `kvc evict` does) until the checkpoints fit in SIZE (e.g. 40G, 512MiB), never evicting what was just imported')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)')
            [CompletionResult]::new('--engine', '--engine', [CompletionResultType]::ParameterName, 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Evaluate scores and ages at this Unix time instead of now (reproducible output)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--reset-stats', '--reset-stats', [CompletionResultType]::ParameterName, 'Zero the hit counts and set last_used to now in the installed copies')
            [CompletionResult]::new('--include-agent', '--include-agent', [CompletionResultType]::ParameterName, 'With replace or newer, also replace ds4-agent''s explicit saves (sysprompt.kv, agent-system, agent-session), which are kept otherwise')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;trailer' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the entries of a checkpoint''s tool-id map, and which of them ds4 uses (the last entry of an id wins)')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write a checkpoint''s tool-id map to standard output as JSON (shadowed entries marked)')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Replace the tool-id map of checkpoints with one given as JSON')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Drop map entries ds4 never uses (shadowed ids, NUL-first) or whose DSML block is not in the text')
            [CompletionResult]::new('strip', 'strip', [CompletionResultType]::ParameterValue, 'Remove the tool-id map and clear ext bit 0 (also repairs a broken trailer)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kvc;trailer;ls' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;trailer;export' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;trailer;set' {
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'JSON file with the map, or `-` for standard input')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)')
            [CompletionResult]::new('--method', '--method', [CompletionResultType]::ParameterName, 'How to write the new trailer')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--allow-missing', '--allow-missing', [CompletionResultType]::ParameterName, 'Store entries whose DSML block does not occur in the text')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;trailer;prune' {
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)')
            [CompletionResult]::new('--method', '--method', [CompletionResultType]::ParameterName, 'How to write the new trailer')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every checkpoint of the directory that has something to rewrite (a KEY argument may then only be the directory)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;trailer;strip' {
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)')
            [CompletionResult]::new('--method', '--method', [CompletionResultType]::ParameterName, 'How to write the new trailer')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every checkpoint of the directory that has something to rewrite (a KEY argument may then only be the directory)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;trailer;help' {
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the entries of a checkpoint''s tool-id map, and which of them ds4 uses (the last entry of an id wins)')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write a checkpoint''s tool-id map to standard output as JSON (shadowed entries marked)')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Replace the tool-id map of checkpoints with one given as JSON')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Drop map entries ds4 never uses (shadowed ids, NUL-first) or whose DSML block is not in the text')
            [CompletionResult]::new('strip', 'strip', [CompletionResultType]::ParameterValue, 'Remove the tool-id map and clear ext bit 0 (also repairs a broken trailer)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kvc;trailer;help;ls' {
            break
        }
        'kvc;trailer;help;export' {
            break
        }
        'kvc;trailer;help;set' {
            break
        }
        'kvc;trailer;help;prune' {
            break
        }
        'kvc;trailer;help;strip' {
            break
        }
        'kvc;trailer;help;help' {
            break
        }
        'kvc;completions' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--dynamic', '--dynamic', [CompletionResultType]::ParameterName, 'Print the registration script of dynamic completion instead: it asks kvc itself, so keys complete from the cache directory (the --dir typed, else $KVC_DIR, else ~/.ds4/kvcache) and a number typed for a size to its units')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;man' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;match' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as DIR')
            [CompletionResult]::new('--ctx', '--ctx', [CompletionResultType]::ParameterName, 'Live context size, as ds4-server''s --ctx [default: 32768]')
            [CompletionResult]::new('--model-id', '--model-id', [CompletionResultType]::ParameterName, 'Live model id: 0 flash, 1 pro, 2 glm-5.2 [default: 0]')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Live model by name: flash, pro, glm-5.2, laguna, qwen3.8')
            [CompletionResult]::new('--quant', '--quant', [CompletionResultType]::ParameterName, 'Live routed-expert quant bits (2 or 4); compared only with --reject-different-quant')
            [CompletionResult]::new('--min-tokens', '--min-tokens', [CompletionResultType]::ParameterName, 'Minimum checkpoint tokens, as ds4-server''s --kv-cache-min-tokens [default: 512]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--reject-different-quant', '--reject-different-quant', [CompletionResultType]::ParameterName, 'As ds4-server''s --kv-cache-reject-different-quant: skip checkpoints of other quant bits')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;push' {
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Only checkpoints saved for this reason (repeatable: any of them)')
            [CompletionResult]::new('--min-tokens', '--min-tokens', [CompletionResultType]::ParameterName, 'Only checkpoints of at least N tokens')
            [CompletionResult]::new('--used-within', '--used-within', [CompletionResultType]::ParameterName, 'Only checkpoints used (or, never used, created) within DURATION, e.g. 2d, 12h')
            [CompletionResult]::new('--quant', '--quant', [CompletionResultType]::ParameterName, 'Only checkpoints with these routed-expert quant bits')
            [CompletionResult]::new('--exclude-text', '--exclude-text', [CompletionResultType]::ParameterName, 'Never send a checkpoint whose stored text matches REGEX (repeatable; checked before upload)')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--engine', '--engine', [CompletionResultType]::ParameterName, 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every checkpoint of the directory (filters still apply)')
            [CompletionResult]::new('--read-only', '--read-only', [CompletionResultType]::ParameterName, 'Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull')
            [CompletionResult]::new('--allow-http', '--allow-http', [CompletionResultType]::ParameterName, 'Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;pull' {
            [CompletionResult]::new('--match', '--match', [CompletionResultType]::ParameterName, 'The checkpoint ds4 mainline would load for this rendered prompt (a file; `-` for standard input)')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Only this model''s checkpoints (flash, pro, glm-5.2, …, or a dialect such as d20: the remote''s namespaces); with --match, the live model')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Only checkpoints saved for this reason (repeatable: any of them)')
            [CompletionResult]::new('--min-tokens', '--min-tokens', [CompletionResultType]::ParameterName, 'Only checkpoints of at least N tokens (with --match: ds4-server''s --kv-cache-min-tokens, default 512)')
            [CompletionResult]::new('--used-within', '--used-within', [CompletionResultType]::ParameterName, 'Only checkpoints used (or, never used, created) within DURATION, e.g. 2d, 12h')
            [CompletionResult]::new('--quant', '--quant', [CompletionResultType]::ParameterName, 'Only checkpoints with these routed-expert quant bits (with --match: as --kv-cache-reject-different-quant)')
            [CompletionResult]::new('--ctx', '--ctx', [CompletionResultType]::ParameterName, 'With --match: the live context size, as ds4-server''s --ctx [default: 32768]')
            [CompletionResult]::new('--on-conflict', '--on-conflict', [CompletionResultType]::ParameterName, 'When the cache already has another copy under the key (the same text, payload and trailers count as present)')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'Afterwards, evict (as `kvc evict` does) until the checkpoints fit in SIZE, never evicting what was just pulled')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory, as a last DIR argument [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)')
            [CompletionResult]::new('--engine', '--engine', [CompletionResultType]::ParameterName, 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Evaluate scores and ages at this Unix time instead of now (reproducible output)')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait at most this long for another kvc''s lock on a cache directory (after a second kvc says who holds it), then exit with status 3 (30s, 10m; 0 = do not wait)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every checkpoint of the remote (filters still apply)')
            [CompletionResult]::new('--reset-stats', '--reset-stats', [CompletionResultType]::ParameterName, 'Zero the hit counts and set last_used to now in the installed copies')
            [CompletionResult]::new('--include-agent', '--include-agent', [CompletionResultType]::ParameterName, 'With replace or newer, also replace ds4-agent''s explicit saves (sysprompt.kv, agent-system, agent-session)')
            [CompletionResult]::new('--read-only', '--read-only', [CompletionResultType]::ParameterName, 'Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull')
            [CompletionResult]::new('--allow-http', '--allow-http', [CompletionResultType]::ParameterName, 'Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;remote' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List a remote''s checkpoints with `kvc ls`''s columns and JSON, one table per namespace')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Delete checkpoints from a remote by key')
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Trim a remote by age and size, and abort abandoned multipart uploads')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kvc;remote;ls' {
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Only this namespace (flash, pro, glm-5.2, …, or a dialect such as d20)')
            [CompletionResult]::new('--sort', '--sort', [CompletionResultType]::ParameterName, 'Order of the rows')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'Eviction order [default: the policy of the directory''s engine, said in the output]: ds4 (ds4 mainline since ec6a82a, 2026-05-26), ds4-classic (ds4 up to 2026-05-25), lru (hanzo-engine)')
            [CompletionResult]::new('--engine', '--engine', [CompletionResultType]::ParameterName, 'Engine that reads the directory [default: inferred from its files]: decides what a pre-ABI ds4 file and a hanzo-engine file (identical headers) are, and which files the engine loads')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Evaluate scores and ages at this Unix time instead of now (reproducible output)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the full keys, one per line')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the full keys, one per line')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Reverse the order')
            [CompletionResult]::new('--reverse', '--reverse', [CompletionResultType]::ParameterName, 'Reverse the order')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Full keys, absolute times, model id and payload ABI')
            [CompletionResult]::new('--long', '--long', [CompletionResultType]::ParameterName, 'Full keys, absolute times, model id and payload ABI')
            [CompletionResult]::new('--no-title', '--no-title', [CompletionResultType]::ParameterName, 'Do not show titles')
            [CompletionResult]::new('--read-only', '--read-only', [CompletionResultType]::ParameterName, 'Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull')
            [CompletionResult]::new('--allow-http', '--allow-http', [CompletionResultType]::ParameterName, 'Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)')
            [CompletionResult]::new('--reject-different-quant', '--reject-different-quant', [CompletionResultType]::ParameterName, 'As ds4-server run with --kv-cache-reject-different-quant: only a checkpoint of the same quant bits supersedes a waypoint (policy ds4)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;remote;rm' {
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Only in this namespace (flash, pro, glm-5.2, …, d20)')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--read-only', '--read-only', [CompletionResultType]::ParameterName, 'Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull')
            [CompletionResult]::new('--allow-http', '--allow-http', [CompletionResultType]::ParameterName, 'Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;remote;gc' {
            [CompletionResult]::new('--max-age', '--max-age', [CompletionResultType]::ParameterName, 'Delete checkpoints not seen in use for longer than DURATION (30d, 12h)')
            [CompletionResult]::new('--max-size', '--max-size', [CompletionResultType]::ParameterName, 'Then delete the oldest until the checkpoints take at most SIZE (500G, 1.5T)')
            [CompletionResult]::new('--uploads-older-than', '--uploads-older-than', [CompletionResultType]::ParameterName, 'Abort multipart uploads started longer ago than DURATION')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Only in this namespace (flash, pro, glm-5.2, …, d20)')
            [CompletionResult]::new('--remote', '--remote', [CompletionResultType]::ParameterName, 'The remote: s3://bucket/prefix (credentials, region and endpoint from the AWS_* environment)')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Use this Unix time as now: for ages, and for the times the journal records (reproducible runs)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour severities (error, warning) in the output: auto = on a terminal, unless $NO_COLOR is set or TERM=dumb')
            [CompletionResult]::new('--read-only', '--read-only', [CompletionResultType]::ParameterName, 'Refuse to write to the remote (push, remote rm, remote gc fail before sending anything): for hosts that may only pull')
            [CompletionResult]::new('--allow-http', '--allow-http', [CompletionResultType]::ParameterName, 'Allow a plain-HTTP endpoint on another host (endpoints on this host are allowed without it)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be done and change nothing (no lock, not even kvc''s own state)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in doc/GUIDE.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;remote;help' {
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List a remote''s checkpoints with `kvc ls`''s columns and JSON, one table per namespace')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Delete checkpoints from a remote by key')
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Trim a remote by age and size, and abort abandoned multipart uploads')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kvc;remote;help;ls' {
            break
        }
        'kvc;remote;help;rm' {
            break
        }
        'kvc;remote;help;gc' {
            break
        }
        'kvc;remote;help;help' {
            break
        }
        'kvc;help' {
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the checkpoints of cache directories, with their eviction rank')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show every header field, the trailer and the payload header of one checkpoint')
            [CompletionResult]::new('cat', 'cat', [CompletionResultType]::ParameterValue, 'Write the stored prompt text of a checkpoint, raw, to a pipe or file')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check every checkpoint for corruption, truncation and mislabelling (exit 1 on any error)')
            [CompletionResult]::new('evict', 'evict', [CompletionResultType]::ParameterValue, 'Delete checkpoints until the cache fits a budget, next victim first')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Remove named checkpoints')
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Remove temp files left by crashed writers, and empty kvc state')
            [CompletionResult]::new('stats', 'stats', [CompletionResultType]::ParameterValue, 'One screen about cache directories: what they hold, what was hit, what each command would free')
            [CompletionResult]::new('tree', 'tree', [CompletionResultType]::ParameterValue, 'The prefix forest: which checkpoint''s text extends which, with the bytes that hold no prefix of their own')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Write one self-contained HTML file with charts (SVG) of a cache directory and, with --log, of its engine''s activity')
            [CompletionResult]::new('log', 'log', [CompletionResultType]::ParameterValue, 'Show the journal of what kvc deleted, installed, quarantined or rewrote, oldest first')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write checkpoints to a bundle (a tar stream with a digest per file) for `kvc import`')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Install the checkpoints of a bundle, verifying every byte before it becomes visible')
            [CompletionResult]::new('trailer', 'trailer', [CompletionResultType]::ParameterValue, 'Inspect and rewrite the tool-id map trailers of checkpoints (crash-safe)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write the man pages (kvc.1 and one per command) into DIR')
            [CompletionResult]::new('match', 'match', [CompletionResultType]::ParameterValue, 'Explain a cache hit or miss offline: which checkpoint ds4 loads for a prompt, and why every other one loses')
            [CompletionResult]::new('push', 'push', [CompletionResultType]::ParameterValue, 'Upload checkpoints a remote (S3-compatible object storage) lacks, checked first')
            [CompletionResult]::new('pull', 'pull', [CompletionResultType]::ParameterValue, 'Download checkpoints from a remote into a cache, verifying every byte before it becomes visible')
            [CompletionResult]::new('remote', 'remote', [CompletionResultType]::ParameterValue, 'List, remove and trim a remote''s checkpoints')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kvc;help;ls' {
            break
        }
        'kvc;help;show' {
            break
        }
        'kvc;help;cat' {
            break
        }
        'kvc;help;verify' {
            break
        }
        'kvc;help;evict' {
            break
        }
        'kvc;help;rm' {
            break
        }
        'kvc;help;gc' {
            break
        }
        'kvc;help;stats' {
            break
        }
        'kvc;help;tree' {
            break
        }
        'kvc;help;report' {
            break
        }
        'kvc;help;log' {
            break
        }
        'kvc;help;export' {
            break
        }
        'kvc;help;import' {
            break
        }
        'kvc;help;trailer' {
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the entries of a checkpoint''s tool-id map, and which of them ds4 uses (the last entry of an id wins)')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write a checkpoint''s tool-id map to standard output as JSON (shadowed entries marked)')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Replace the tool-id map of checkpoints with one given as JSON')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Drop map entries ds4 never uses (shadowed ids, NUL-first) or whose DSML block is not in the text')
            [CompletionResult]::new('strip', 'strip', [CompletionResultType]::ParameterValue, 'Remove the tool-id map and clear ext bit 0 (also repairs a broken trailer)')
            break
        }
        'kvc;help;trailer;ls' {
            break
        }
        'kvc;help;trailer;export' {
            break
        }
        'kvc;help;trailer;set' {
            break
        }
        'kvc;help;trailer;prune' {
            break
        }
        'kvc;help;trailer;strip' {
            break
        }
        'kvc;help;completions' {
            break
        }
        'kvc;help;man' {
            break
        }
        'kvc;help;match' {
            break
        }
        'kvc;help;push' {
            break
        }
        'kvc;help;pull' {
            break
        }
        'kvc;help;remote' {
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List a remote''s checkpoints with `kvc ls`''s columns and JSON, one table per namespace')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Delete checkpoints from a remote by key')
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Trim a remote by age and size, and abort abandoned multipart uploads')
            break
        }
        'kvc;help;remote;ls' {
            break
        }
        'kvc;help;remote;rm' {
            break
        }
        'kvc;help;remote;gc' {
            break
        }
        'kvc;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
