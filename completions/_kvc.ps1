
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
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the checkpoints of cache directories, with their eviction rank')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show every header field, the trailer and the payload header of one checkpoint')
            [CompletionResult]::new('cat', 'cat', [CompletionResultType]::ParameterValue, 'Write the stored prompt text of a checkpoint, raw, to a pipe or file')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kvc;ls' {
            [CompletionResult]::new('--sort', '--sort', [CompletionResultType]::ParameterName, 'Order of the rows')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'Eviction policy: ds4 (forks: anchors and superseded waypoints), ds4-classic (upstream ds4), lru (hanzo-engine)')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Evaluate scores and ages at this Unix time instead of now (reproducible output)')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Reverse the order')
            [CompletionResult]::new('--reverse', '--reverse', [CompletionResultType]::ParameterName, 'Reverse the order')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Full keys, absolute times, model id and payload ABI')
            [CompletionResult]::new('--long', '--long', [CompletionResultType]::ParameterName, 'Full keys, absolute times, model id and payload ABI')
            [CompletionResult]::new('--no-title', '--no-title', [CompletionResultType]::ParameterName, 'Do not read the texts: no titles, no key check (reads 52 bytes a file)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in README.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;show' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory to resolve keys in [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory to resolve keys in [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'Eviction policy: ds4 (forks: anchors and superseded waypoints), ds4-classic (upstream ds4), lru (hanzo-engine)')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Evaluate scores and ages at this Unix time instead of now (reproducible output)')
            [CompletionResult]::new('--text', '--text', [CompletionResultType]::ParameterName, 'Also show the whole text, with control characters escaped')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in README.md) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;cat' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Cache directory to resolve keys in [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Cache directory to resolve keys in [default: $KVC_DIR, else ~/.ds4/kvcache]')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Write the raw text even when standard output is a terminal')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvc;help' {
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the checkpoints of cache directories, with their eviction rank')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show every header field, the trailer and the payload header of one checkpoint')
            [CompletionResult]::new('cat', 'cat', [CompletionResultType]::ParameterValue, 'Write the stored prompt text of a checkpoint, raw, to a pipe or file')
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
        'kvc;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
