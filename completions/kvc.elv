
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
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand ls 'List the checkpoints of cache directories, with their eviction rank'
            cand show 'Show every header field, the trailer and the payload header of one checkpoint'
            cand cat 'Write the stored prompt text of a checkpoint, raw, to a pipe or file'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kvc;ls'= {
            cand --sort 'Order of the rows'
            cand --policy 'Eviction policy: ds4 (forks: anchors and superseded waypoints), ds4-classic (upstream ds4), lru (hanzo-engine)'
            cand --now 'Evaluate scores and ages at this Unix time instead of now (reproducible output)'
            cand -r 'Reverse the order'
            cand --reverse 'Reverse the order'
            cand -l 'Full keys, absolute times, model id and payload ABI'
            cand --long 'Full keys, absolute times, model id and payload ABI'
            cand --no-title 'Do not read the texts: no titles, no key check (reads 52 bytes a file)'
            cand --json 'Print JSON (schema in README.md) instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;show'= {
            cand -d 'Cache directory to resolve keys in [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --dir 'Cache directory to resolve keys in [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --policy 'Eviction policy: ds4 (forks: anchors and superseded waypoints), ds4-classic (upstream ds4), lru (hanzo-engine)'
            cand --now 'Evaluate scores and ages at this Unix time instead of now (reproducible output)'
            cand --text 'Also show the whole text, with control characters escaped'
            cand --json 'Print JSON (schema in README.md) instead of a table'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;cat'= {
            cand -d 'Cache directory to resolve keys in [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --dir 'Cache directory to resolve keys in [default: $KVC_DIR, else ~/.ds4/kvcache]'
            cand --force 'Write the raw text even when standard output is a terminal'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvc;help'= {
            cand ls 'List the checkpoints of cache directories, with their eviction rank'
            cand show 'Show every header field, the trailer and the payload header of one checkpoint'
            cand cat 'Write the stored prompt text of a checkpoint, raw, to a pipe or file'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kvc;help;ls'= {
        }
        &'kvc;help;show'= {
        }
        &'kvc;help;cat'= {
        }
        &'kvc;help;help'= {
        }
    ]
    $completions[$command]
}
