//! `kvc match` through the real binary: directories built byte by byte,
//! one test per verdict, tie rule, input quirk and dialect, each checked
//! against what ds4 mainline's lookup (b030961) does.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

const SYS_USER: &str = "<｜begin▁of▁sentence｜>You are helpful.<｜User｜>";

/// A growing conversation: the first turn (a cold checkpoint's text), the
/// second (a continued one's), and a prompt that extends the second.
fn conversation() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let t1 = chat("List the files");
    let t2 = [
        t1.clone(),
        "Here they are.<｜end▁of▁sentence｜><｜User｜>Explain the layout<｜Assistant｜>"
            .as_bytes()
            .to_vec(),
    ]
    .concat();
    let prompt = [
        t2.clone(),
        "It is flat.<｜end▁of▁sentence｜><｜User｜>And the tests?<｜Assistant｜>"
            .as_bytes()
            .to_vec(),
    ]
    .concat();
    (t1, t2, prompt)
}

fn file_of(c: &Ckpt) -> String {
    c.file_name()
}

fn verdict<'a>(v: &'a Value, c: &Ckpt) -> &'a Value {
    &match_candidate(v, &file_of(c))["verdict"]
}

fn why(v: &Value, c: &Ckpt) -> String {
    match_candidate(v, &file_of(c))["why"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_hit_loads_the_longest_prefix_and_every_other_file_gets_a_verdict() {
    let env = TestEnv::new();
    let (t1, t2, prompt) = conversation();
    let cold = mainline(t1.clone());
    let cont = mainline(t2.clone()).tokens(900, 32768);
    let other = mainline(chat("Write a haiku"));
    let longer = mainline([prompt.clone(), b"More.".to_vec()].concat());
    for c in [&cold, &cont, &other, &longer] {
        env.add(c);
    }
    let (v, code) = env.kvc_match(&prompt, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["hit"], true);
    assert_eq!(v["diagnosis_code"], "hit");
    let c = &v["chosen"];
    assert_eq!(c["key"], cont.key());
    assert_eq!(c["text_bytes"], t2.len());
    assert_eq!(c["tokens"], 900);
    assert_eq!(c["key_kind"], "text");
    assert_eq!(c["prefill_bytes"], prompt.len() - t2.len());
    assert!(c["prefill_head"]
        .as_str()
        .unwrap()
        .starts_with("It is flat."));
    let share = c["share"].as_f64().unwrap();
    assert!((share - t2.len() as f64 / prompt.len() as f64).abs() < 1e-9);
    // The chosen file is not a candidate; the three others are.
    assert_eq!(v["candidates"].as_array().unwrap().len(), 3);
    assert_eq!(verdict(&v, &cold), "shorter-prefix");
    let cj = match_candidate(&v, &file_of(&cold));
    assert_eq!(cj["full_prefix"], true);
    assert_eq!(cj["shared_prefix_bytes"], t1.len());
    assert_eq!(verdict(&v, &longer), "text-longer-than-prompt");
    assert_eq!(
        match_candidate(&v, &file_of(&longer))["shared_prefix_bytes"],
        prompt.len()
    );
    // "Write" against "List": the first byte of the first user turn.
    let oj = match_candidate(&v, &file_of(&other));
    assert_eq!(oj["verdict"], "not-a-prefix");
    assert_eq!(oj["full_prefix"], false);
    assert_eq!(oj["diverges_at"], SYS_USER.len());
    assert_eq!(oj["shared_prefix_bytes"], SYS_USER.len());
    assert_eq!(oj["diverges_in"]["part"], "user-turn");
    assert_eq!(oj["diverges_in"]["turn"], 1);
    assert!(oj["excerpt"]["before"]
        .as_str()
        .unwrap()
        .ends_with("<｜User｜>"));
    assert!(oj["excerpt"]["prompt"]
        .as_str()
        .unwrap()
        .starts_with("List the files"));
    assert!(oj["excerpt"]["stored"]
        .as_str()
        .unwrap()
        .starts_with("Write a haiku"));
    assert_eq!(v["counts"]["chosen"], 1);
    assert_eq!(v["counts"]["not-a-prefix"], 1);
    assert_eq!(v["prompt_bytes"], prompt.len());
    assert_eq!(v["prompt_nul_at"], Value::Null);
    assert_eq!(v["engine"]["engine"], "ds4");
}

#[test]
fn filters_apply_in_the_engines_order_and_the_first_failed_one_is_the_verdict() {
    let env = TestEnv::new();
    let (_, _, p) = conversation();
    // Every file fails the filters from a later one on; each must be
    // reported by the first it fails.
    let all_bad = |c: Ckpt| {
        let mut c = c.model(1).quant(4);
        c.tokens = 100;
        c.ctx_size = 65536;
        c
    };
    let longer = all_bad(mainline([p.clone(), b"!".to_vec()].concat()));
    let few = all_bad(mainline(p[..10].to_vec()));
    let mut model = all_bad(mainline(p[..11].to_vec()));
    model.tokens = 600;
    let mut ctx = model.clone().model(0);
    ctx.text = p[..12].to_vec();
    let mut quant = ctx.clone();
    quant.ctx_size = 32768;
    quant.text = p[..13].to_vec();
    // The reader comes before every filter.
    let mut abi0 = all_bad(Ckpt::new(p[..14].to_vec()));
    abi0.payload_abi = 0;
    for c in [&longer, &few, &model, &ctx, &quant, &abi0] {
        env.add(c);
    }
    let (v, code) = env.kvc_match(&p, &["--quant", "2", "--reject-different-quant"]);
    assert_eq!(code, 1);
    assert_eq!(verdict(&v, &longer), "text-longer-than-prompt");
    assert_eq!(verdict(&v, &few), "tokens-below-min");
    assert_eq!(verdict(&v, &model), "other-model");
    assert_eq!(verdict(&v, &ctx), "ctx-larger-than-live");
    assert_eq!(verdict(&v, &quant), "other-quant");
    assert_eq!(verdict(&v, &abi0), "not-loadable");
    assert_eq!(why(&v, &few), "100 tokens, below the minimum 512");
    assert_eq!(why(&v, &model), "model 1 (pro), live model 0 (flash)");
    assert_eq!(why(&v, &ctx), "written for ctx 65536 > live 32768");
    assert_eq!(
        why(&v, &quant),
        "quant 4, live quant 2 (--reject-different-quant)"
    );
    assert!(
        why(&v, &abi0).contains("payload ABI 0"),
        "{}",
        why(&v, &abi0)
    );
    // Every one of them is a full prefix by name, so the diagnosis names
    // the longest one and what removed it.
    assert_eq!(v["diagnosis_code"], "full-prefix-skipped");
    let d = v["diagnosis"].as_str().unwrap();
    assert!(d.contains(&abi0.key()[..12]), "{d}");
    assert!(d.contains("payload ABI 0"), "{d}");
    assert_eq!(v["live"]["quant_bits"], 2);
    assert_eq!(v["live"]["reject_different_quant"], true);
}

#[test]
fn each_filter_alone_and_the_live_settings_that_lift_it() {
    let env = TestEnv::new();
    let (t1, t2, p) = conversation();
    let chosen = mainline(t1.clone());
    let mut cases = vec![
        (
            mainline(p[..t1.len() + 3].to_vec()).tokens(300, 32768),
            "tokens-below-min",
            vec!["--min-tokens", "300"],
        ),
        (
            mainline(p[..t1.len() + 5].to_vec()).model(2),
            "other-model",
            vec!["--model", "glm-5.2"],
        ),
        (
            mainline(p[..t1.len() + 7].to_vec()).tokens(600, 131072),
            "ctx-larger-than-live",
            vec!["--ctx", "131072"],
        ),
        (
            mainline(t2.clone()).quant(4),
            "other-quant",
            vec!["--quant", "4", "--reject-different-quant"],
        ),
    ];
    env.add(&chosen);
    for (c, code, lift) in cases.drain(..) {
        let path = env.add(&c);
        let (v, exit) = env.kvc_match(&p, &["--quant", "2", "--reject-different-quant"]);
        assert_eq!(exit, 0);
        assert_eq!(v["chosen"]["key"], chosen.key(), "{code}");
        assert_eq!(verdict(&v, &c), code);
        // The hit names the longer prefix it could not use.
        let d = v["diagnosis"].as_str().unwrap();
        assert!(
            d.contains("a longer prefix") && d.contains(&c.key()[..12]),
            "{d}"
        );
        // With the live setting that lets it through, it is the choice.
        let mut args = vec![];
        if code != "other-quant" {
            args.extend(["--quant", "2", "--reject-different-quant"]);
        }
        args.extend(lift.iter().copied());
        let (v, exit) = env.kvc_match(&p, &args);
        assert_eq!(exit, 0, "{code}: {v:#}");
        assert_eq!(v["chosen"]["key"], c.key(), "{code} lifted by {lift:?}");
        fs::remove_file(path).unwrap();
    }
}

#[test]
fn quant_is_accepted_across_2_and_4_without_the_flag() {
    let env = TestEnv::new();
    let (_, t2, p) = conversation();
    let q4 = mainline(t2).quant(4);
    env.add(&q4);
    let (v, code) = env.kvc_match(&p, &["--quant", "2"]);
    assert_eq!(code, 0);
    assert_eq!(v["chosen"]["quant_bits"], 4);
    assert_eq!(v["live"]["reject_different_quant"], false);
}

#[test]
fn a_token_count_of_2_pow_31_is_below_any_minimum_as_ds4_reads_an_int() {
    let env = TestEnv::new();
    let (t1, _, p) = conversation();
    // The payload keeps its 600 tokens: the lookup reads only the header.
    let mut huge = mainline(t1);
    huge.tokens = 0x8000_0000;
    env.add(&huge);
    let (v, code) = env.kvc_match(&p, &["--min-tokens", "0"]);
    assert_eq!(code, 1);
    assert_eq!(verdict(&v, &huge), "tokens-below-min");
    assert!(why(&v, &huge).contains("-2147483648"), "{}", why(&v, &huge));
}

/// `<key>.kv` with the hex digits in upper case: ds4 lower-cases the name,
/// so it is the same key as the lower-case file.
fn upper(c: Ckpt) -> Ckpt {
    let k = c.key().to_uppercase();
    c.named(&k)
}

#[test]
fn ties_on_length_go_to_more_tokens() {
    let env = TestEnv::new();
    let (t1, _, p) = conversation();
    let few = mainline(t1.clone());
    let many = upper(mainline(t1).tokens(700, 32768));
    env.add(&few);
    env.add(&many);
    let (v, code) = env.kvc_match(&p, &[]);
    assert_eq!(code, 0);
    assert_eq!(v["chosen"]["file"], file_of(&many));
    assert_eq!(v["chosen"]["tokens"], 700);
    assert_eq!(verdict(&v, &few), "shorter-prefix");
    assert_eq!(
        why(&v, &few),
        "a prefix as long as the pick, with fewer tokens"
    );
}

#[test]
fn ties_on_length_and_tokens_go_to_the_first_in_directory_order() {
    let env = TestEnv::new();
    let (t1, _, p) = conversation();
    let lower = mainline(t1.clone());
    let upper = upper(mainline(t1));
    env.add(&lower);
    env.add(&upper);
    // Whatever order the file system lists them in, the first one wins.
    let listed: Vec<String> = fs::read_dir(&env.cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let (first, second) = if listed[0] == file_of(&lower) {
        (&lower, &upper)
    } else {
        (&upper, &lower)
    };
    let (v, code) = env.kvc_match(&p, &[]);
    assert_eq!(code, 0);
    assert_eq!(v["chosen"]["file"], file_of(first), "listed {listed:?}");
    let loser = match_candidate(&v, &file_of(second));
    assert_eq!(loser["verdict"], "shorter-prefix");
    assert_eq!(loser["order"], 1);
    assert!(loser["why"]
        .as_str()
        .unwrap()
        .contains("first in directory order"));
}

#[test]
fn the_prompt_is_a_c_string_bytes_after_a_nul_are_ignored() {
    let env = TestEnv::new();
    let (_, t2, _) = conversation();
    let prompt = [t2.clone(), b"\0<|User|>anything after the NUL".to_vec()].concat();
    // A text that goes on past the NUL is longer than the prompt ds4 sees.
    let past = mainline(prompt[..t2.len() + 10].to_vec());
    let cont = mainline(t2.clone());
    env.add(&past);
    env.add(&cont);
    let (v, code) = env.kvc_match(&prompt, &[]);
    assert_eq!(code, 0);
    assert_eq!(v["prompt_bytes"], t2.len());
    assert_eq!(v["prompt_nul_at"], t2.len());
    assert_eq!(v["prompt_read_bytes"], prompt.len());
    assert_eq!(v["chosen"]["key"], cont.key());
    assert_eq!(v["chosen"]["prefill_bytes"], 0);
    assert_eq!(verdict(&v, &past), "text-longer-than-prompt");
    // The table says so.
    let path = env.root.path().join("nul.txt");
    fs::write(&path, &prompt).unwrap();
    let out = env
        .kvc()
        .args(["match", "--dir"])
        .arg(&env.cache)
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "NUL byte at offset {}; ds4 reads the prompt as a C string",
            t2.len()
        )),
        "{text}"
    );
}

#[test]
fn a_nul_first_byte_is_an_empty_prompt() {
    let env = TestEnv::new();
    let (t1, _, _) = conversation();
    env.add(&mainline(t1));
    let (v, code) = env.kvc_match(b"\0<|User|>hello", &[]);
    assert_eq!(code, 1);
    assert_eq!(v["prompt_bytes"], 0);
    assert_eq!(v["diagnosis_code"], "empty-prompt");
    assert!(v["diagnosis"].as_str().unwrap().contains("C string"));
}

/// A file named by the SHA-1 of the prompt's first `len` bytes whose text
/// (of that length) differs at `at`.
fn misnamed_for(prompt: &[u8], len: usize, at: usize) -> Ckpt {
    let mut text = prompt[..len].to_vec();
    text[at] = b'#';
    mainline(text).named(&sha1_hex(&prompt[..len]))
}

#[test]
fn a_pick_whose_text_does_not_match_is_a_miss_with_no_fallback() {
    let env = TestEnv::new();
    let (t1, t2, p) = conversation();
    let at = t1.len() + "Here ".len();
    let liar = misnamed_for(&p, t2.len(), at);
    let cold = mainline(t1.clone());
    env.add(&liar);
    env.add(&cold);
    let (v, code) = env.kvc_match(&p, &[]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["hit"], false);
    assert_eq!(v["chosen"], Value::Null);
    let lj = match_candidate(&v, &file_of(&liar));
    assert_eq!(lj["verdict"], "text-mismatch");
    assert_eq!(lj["engine_pick"], true);
    assert_eq!(lj["full_prefix"], true);
    assert_eq!(lj["diverges_at"], at);
    assert_eq!(lj["shared_prefix_bytes"], at);
    assert!(lj["excerpt"]["prompt"]
        .as_str()
        .unwrap()
        .starts_with("they are"));
    assert!(lj["excerpt"]["stored"]
        .as_str()
        .unwrap()
        .starts_with("#hey are"));
    // The engine's pick comes first in the list.
    assert_eq!(v["candidates"][0]["file"], file_of(&liar));
    // What the engine would load without it: kvc's extra, labelled.
    assert_eq!(v["fallback"]["key"], cold.key());
    assert_eq!(verdict(&v, &cold), "shorter-prefix");
    assert_eq!(v["diagnosis_code"], "pick-fails");
    let d = v["diagnosis"].as_str().unwrap();
    assert!(d.contains("does not fall back"), "{d}");
    assert!(d.contains("kvc's extra"), "{d}");
    assert!(d.contains(&cold.key()[..12]), "{d}");
}

#[test]
fn a_failing_pick_without_anything_to_fall_back_to() {
    let env = TestEnv::new();
    let (_, t2, p) = conversation();
    let liar = misnamed_for(&p, t2.len(), 3);
    env.add(&liar);
    let (v, code) = env.kvc_match(&p, &[]);
    assert_eq!(code, 1);
    assert_eq!(verdict(&v, &liar), "text-mismatch");
    assert_eq!(v["fallback"], Value::Null);
    assert!(v["diagnosis"]
        .as_str()
        .unwrap()
        .contains("nothing else would match"));
}

#[test]
fn fork_dialects_foreign_invalid_and_agent_files_are_not_loadable() {
    let env = TestEnv::new();
    let (t1, t2, p) = conversation();
    let cold = mainline(t1.clone());
    // Full prefixes of the prompt, each outside mainline's population.
    let abi0 = Ckpt::new(t2.clone());
    let mut abi3 = mainline(p[..t2.len() + 2].to_vec());
    abi3.payload_abi = 3;
    let mut zero = mainline(p[..t2.len() + 4].to_vec());
    zero.tokens = 0;
    let mut v9 = mainline(p[..t2.len() + 6].to_vec());
    v9.version = 9;
    let mut cut = mainline(p[..t2.len() + 8].to_vec());
    cut.payload_bytes = Some(cut.payload.len() as u64 + 100);
    let mut sys = mainline(p[..t2.len() + 10].to_vec());
    sys.name = Some("sysprompt.kv".into());
    for c in [&cold, &abi0, &abi3, &zero, &v9, &cut, &sys] {
        env.add(c);
    }
    let (v, code) = env.kvc_match(&p, &[]);
    assert_eq!(code, 0);
    assert_eq!(v["chosen"]["key"], cold.key());
    for (c, says) in [
        (&abi0, "payload ABI 0"),
        (&abi3, "payload ABI 3"),
        (&zero, "0 tokens"),
        (&v9, "foreign"),
        (&cut, "truncated"),
        (&sys, "sysprompt.kv is ds4-agent's"),
    ] {
        assert_eq!(verdict(&v, c), "not-loadable", "{}", file_of(c));
        assert!(why(&v, c).contains(says), "{}: {}", file_of(c), why(&v, c));
    }
    assert_eq!(match_candidate(&v, &file_of(&abi0))["dialect"], "D1");
    assert_eq!(match_candidate(&v, &file_of(&abi3))["dialect"], "D5");
    // The hit says a longer prefix was there but not loadable.
    let d = v["diagnosis"].as_str().unwrap();
    assert!(d.contains("a longer prefix"), "{d}");
}

#[test]
fn a_directory_of_pre_abi_files_is_all_not_loadable_and_says_so() {
    let env = TestEnv::new();
    let (t1, t2, p) = conversation();
    let a = Ckpt::new(t1);
    let b = Ckpt::new(t2.clone());
    env.add(&a);
    env.add(&b);
    let (v, code) = env.kvc_match(&p, &[]);
    assert_eq!(code, 1);
    assert_eq!(v["engine"]["engine"], "ds4-classic");
    assert!(v["engine_note"]
        .as_str()
        .unwrap()
        .contains("before 2026-05-26"));
    assert_eq!(v["counts"]["not-loadable"], 2);
    assert_eq!(v["diagnosis_code"], "full-prefix-skipped");
    let d = v["diagnosis"].as_str().unwrap();
    assert!(
        d.contains(&b.key()[..12]) && d.contains("payload ABI 0"),
        "{d}"
    );
}

#[test]
fn a_hanzo_directory_gets_mainlines_lookup_and_a_note() {
    let env = TestEnv::with_sample("hanzo");
    let (v, code) = env.kvc_match(b"<|im_start|>user\nhello<|im_end|>", &[]);
    assert_eq!(code, 1);
    assert_eq!(v["engine"]["engine"], "hanzo");
    let note = v["engine_note"].as_str().unwrap();
    assert!(note.contains("ds4 mainline's lookup only"), "{note}");
    for c in v["candidates"].as_array().unwrap() {
        assert_eq!(c["verdict"], "not-loadable", "{c:#}");
    }
}

#[test]
fn a_foreign_d8_file_whose_header_passes_the_reader_is_picked_and_fails() {
    let env = TestEnv::new();
    let (t1, t2, p) = conversation();
    let d8 = d8_v1(t2);
    let cold = mainline(t1);
    env.add(&d8);
    env.add(&cold);
    let (v, code) = env.kvc_match(&p, &[]);
    assert_eq!(code, 1, "{v:#}");
    let dj = match_candidate(&v, &file_of(&d8));
    assert_eq!(dj["dialect"], "D8");
    assert_eq!(dj["verdict"], "not-loadable");
    assert_eq!(dj["engine_pick"], true);
    assert!(dj["why"].as_str().unwrap().contains("payload is D8's"));
    assert_eq!(v["fallback"]["key"], cold.key());
    assert_eq!(v["diagnosis_code"], "pick-fails");
}

#[test]
fn visible_transcript_checkpoints_show_their_key_kind() {
    let env = TestEnv::new();
    let (t1, t2, p) = conversation();
    let visible = mainline(t2).ext(0b010);
    env.add(&visible);
    let (v, code) = env.kvc_match(&p, &[]);
    assert_eq!(code, 0);
    assert_eq!(v["chosen"]["key_kind"], "visible-transcript");

    // A near miss keyed by the thinking-visible transcript: the diagnosis
    // says which rendering the prompt must have.
    let env = TestEnv::new();
    let thinking = mainline(
        [
            t1,
            "<think>hidden</think>Here they are.".as_bytes().to_vec(),
        ]
        .concat(),
    )
    .ext(0b100);
    env.add(&thinking);
    let (v, code) = env.kvc_match(&p, &[]);
    assert_eq!(code, 1);
    let tj = match_candidate(&v, &file_of(&thinking));
    assert_eq!(tj["verdict"], "not-a-prefix");
    assert_eq!(tj["key_kind"], "visible-transcript");
    assert_eq!(tj["diverges_in"]["part"], "assistant-turn");
    assert_eq!(v["diagnosis_code"], "longest-shared-prefix");
    let d = v["diagnosis"].as_str().unwrap();
    assert!(d.contains("thinking-visible transcript"), "{d}");
    assert!(d.contains("inside assistant turn 1"), "{d}");
}

#[test]
fn a_prefix_text_under_another_name_is_never_found() {
    let env = TestEnv::new();
    let (t1, _, p) = conversation();
    let misnamed = mainline(t1.clone()).named(&sha1_hex(b"some other text"));
    env.add(&misnamed);
    let (v, code) = env.kvc_match(&p, &[]);
    assert_eq!(code, 1);
    let mj = match_candidate(&v, &file_of(&misnamed));
    assert_eq!(mj["verdict"], "not-a-prefix");
    assert_eq!(mj["full_prefix"], false);
    assert_eq!(mj["shared_prefix_bytes"], t1.len());
    assert_eq!(mj.get("diverges_at"), None);
    assert!(mj["why"].as_str().unwrap().contains("misnamed"));
    assert_eq!(v["diagnosis_code"], "misnamed-prefix");
    assert!(v["diagnosis"]
        .as_str()
        .unwrap()
        .contains("its name is not that text's SHA-1"));

    // An agent session with ext bit 3 is named by its identity, never by
    // its text: the lookup cannot find it either.
    let env = TestEnv::new();
    let session = mainline(t1)
        .ext(0b1000)
        .reason(REASON_AGENT_SESSION)
        .named(&sha1_hex(b"title and created"));
    env.add(&session);
    let (v, _) = env.kvc_match(&p, &[]);
    let sj = match_candidate(&v, &file_of(&session));
    assert_eq!(sj["key_kind"], "session-identity");
    assert!(sj["why"].as_str().unwrap().contains("session identity"));
    assert!(v["diagnosis"]
        .as_str()
        .unwrap()
        .contains("agent session identity"));
}

#[test]
fn the_diagnosis_says_where_the_longest_shared_prefix_diverges() {
    let (t1, t2, p) = conversation();
    // A different system prompt.
    let env = TestEnv::new();
    let terse =
        mainline("<｜begin▁of▁sentence｜>You are terse.<｜User｜>List the files<｜Assistant｜>");
    env.add(&terse);
    let (v, code) = env.kvc_match(&p, &[]);
    assert_eq!(code, 1);
    let d = v["diagnosis"].as_str().unwrap();
    let at = "<｜begin▁of▁sentence｜>You are ".len();
    assert!(
        d.contains(&format!(
            "longest shared prefix is {at} bytes with {}",
            &terse.key()[..12]
        )),
        "{d}"
    );
    assert!(
        d.ends_with("which diverges inside the system prompt"),
        "{d}"
    );

    // A rewritten second user turn, beside a checkpoint that shares less.
    let env = TestEnv::new();
    let second = t2.len() - "Explain the layout<｜Assistant｜>".len();
    let rewritten = mainline(
        [
            t2[..second].to_vec(),
            b"Explain the tests<|Assistant|>".to_vec(),
        ]
        .concat(),
    );
    env.add(&rewritten);
    env.add(&mainline(chat("Something else")));
    let (v, _) = env.kvc_match(&p, &[]);
    let d = v["diagnosis"].as_str().unwrap();
    assert!(d.contains(&rewritten.key()[..12]), "{d}");
    assert!(d.ends_with("which diverges inside user turn 2"), "{d}");
    assert!(t1.len() < second);
}

#[test]
fn a_prompt_that_is_a_prefix_of_a_longer_checkpoint_says_so() {
    let env = TestEnv::new();
    let (_, t2, p) = conversation();
    env.add(&mainline([p.clone(), b"more".to_vec()].concat()));
    let (v, code) = env.kvc_match(&t2, &[]);
    assert_eq!(code, 1);
    assert!(v["diagnosis"]
        .as_str()
        .unwrap()
        .contains("the prompt is itself a prefix"));
}

#[test]
fn an_empty_directory_is_a_miss_with_no_candidates() {
    let env = TestEnv::new();
    let (v, code) = env.kvc_match(b"hello", &[]);
    assert_eq!(code, 1);
    assert_eq!(v["diagnosis_code"], "no-checkpoints");
    assert_eq!(v["candidates"], serde_json::json!([]));
}

#[test]
fn match_reads_and_never_writes() {
    let env = TestEnv::new();
    let (t1, t2, p) = conversation();
    env.add(&mainline(t1));
    env.add(&misnamed_for(&p, t2.len(), 5));
    env.add(&mainline(chat("other")));
    let before = env.snapshot();
    env.kvc_match(&p, &[]);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn stored_text_is_sanitized_in_excerpts() {
    let env = TestEnv::new();
    let (_, _, p) = conversation();
    let evil = mainline(format!("{SYS_USER}\x1b]0;pwned\x07<｜Assistant｜>"));
    env.add(&evil);
    let (v, _) = env.kvc_match(&p, &[]);
    let stored = match_candidate(&v, &file_of(&evil))["excerpt"]["stored"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(stored.starts_with("\\e]0;pwned\\x07"), "{stored}");
    let path = env.root.path().join("p.txt");
    fs::write(&path, &p).unwrap();
    let out = env
        .kvc()
        .args(["match", "-d"])
        .arg(&env.cache)
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.stdout.contains(&0x1b), "raw ESC in the table");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\\e]0;pwned"));
}

#[test]
fn the_table_leads_with_the_diagnosis_and_the_assumed_live_settings() {
    let env = TestEnv::new();
    let (t1, _, p) = conversation();
    env.add(&mainline(t1));
    let path = env.root.path().join("p.txt");
    fs::write(&path, &p).unwrap();
    let run = |args: &[&str]| {
        let out = env
            .kvc()
            .args(["match", "-d"])
            .arg(&env.cache)
            .arg(&path)
            .args(args)
            .output()
            .unwrap();
        (String::from_utf8(out.stdout).unwrap(), out.status.code())
    };
    let (text, code) = run(&[]);
    assert_eq!(code, Some(0));
    assert!(text.starts_with("hit: the engine loads "), "{text}");
    assert!(
        text.contains("live:   model 0 flash (default), ctx 32768 (default), min tokens 512 (default), quant any"),
        "{text}"
    );
    assert!(text.contains("lookup: ds4 mainline b030961"), "{text}");
    let (text, _) = run(&["--ctx", "65536", "--model-id", "0", "--min-tokens", "100"]);
    assert!(
        text.contains("model 0 flash (--model), ctx 65536 (--ctx), min tokens 100 (--min-tokens)"),
        "{text}"
    );
}

#[test]
fn the_prompt_comes_from_standard_input_too() {
    let env = TestEnv::new();
    let (t1, _, p) = conversation();
    let cold = mainline(t1);
    env.add(&cold);
    for args in [&["-"][..], &[][..]] {
        let out = env
            .kvc()
            .args(["match", "--json", "-d"])
            .arg(&env.cache)
            .args(args)
            .write_stdin(p.clone())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["chosen"]["key"], cold.key());
        assert_eq!(v["prompt_source"], "-");
    }
}

/// A pseudo-terminal's slave end, for a stdin that is a terminal.
fn pty_slave() -> OwnedFd {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors into the pointers given; the
    // name and settings pointers may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty failed");
    // The master end is leaked on purpose: closing it would hang up the
    // slave before kvc looks at it. It goes with the test process.
    // SAFETY: `slave` is a descriptor openpty just opened and nothing else owns.
    unsafe { OwnedFd::from_raw_fd(slave) }
}

#[test]
fn bad_input_exits_2() {
    let env = TestEnv::new();
    let run = |args: &[&str], stdin: Option<Stdio>| {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("kvc"));
        cmd.env_clear().arg("match").args(args);
        if let Some(s) = stdin {
            cmd.stdin(s);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let dir = env.cache.to_str().unwrap();
    let missing = env.root.path().join("no-such-prompt");
    let (code, err) = run(&["-d", dir, missing.to_str().unwrap()], None);
    assert_eq!(code, Some(2));
    assert!(err.contains("no-such-prompt"), "{err}");
    let prompt = env.root.path().join("p.txt");
    fs::write(&prompt, b"hello").unwrap();
    let nodir = env.root.path().join("no-such-dir");
    let (code, err) = run(
        &["-d", nodir.to_str().unwrap(), prompt.to_str().unwrap()],
        None,
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("no-such-dir"), "{err}");
    let (code, err) = run(&["-d", dir], Some(Stdio::from(pty_slave())));
    assert_eq!(code, Some(2));
    assert!(err.contains("standard input is a terminal"), "{err}");
    let (code, _) = run(
        &[
            "-d",
            dir,
            "--reject-different-quant",
            prompt.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, Some(2), "--reject-different-quant needs --quant");
    let (code, _) = run(&["-d", dir, "--quant", "3", prompt.to_str().unwrap()], None);
    assert_eq!(code, Some(2));
    let (code, err) = run(
        &["-d", dir, "--model", "llama", prompt.to_str().unwrap()],
        None,
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("flash, pro, glm-5.2"), "{err}");
}

#[test]
fn a_symlink_is_not_followed_and_says_ds4_would() {
    let env = TestEnv::new();
    let (t1, _, p) = conversation();
    let target = env.root.path().join("elsewhere.kv");
    fs::write(&target, mainline(t1.clone()).bytes()).unwrap();
    let name = format!("{}.kv", sha1_hex(&t1));
    std::os::unix::fs::symlink(&target, env.cache.join(&name)).unwrap();
    let (v, code) = env.kvc_match(&p, &[]);
    assert_eq!(code, 1);
    let c = match_candidate(&v, &name);
    assert_eq!(c["verdict"], "not-loadable");
    assert!(
        c["why"].as_str().unwrap().contains("ds4 follows links"),
        "{c:#}"
    );
    assert_eq!(v["diagnosis_code"], "none-loadable");
    assert!(v["diagnosis"]
        .as_str()
        .unwrap()
        .starts_with("miss: the only checkpoint file is not loadable"));
}

#[test]
fn texts_that_share_nothing_with_the_prompt() {
    let env = TestEnv::new();
    let (_, _, p) = conversation();
    env.add(&mainline("system: hello"));
    env.add(&mainline("plain text"));
    let (v, code) = env.kvc_match(&p, &[]);
    assert_eq!(code, 1);
    assert_eq!(v["diagnosis_code"], "nothing-shared");
    for c in v["candidates"].as_array().unwrap() {
        assert_eq!(c["diverges_at"], 0);
        assert_eq!(c["diverges_in"]["part"], "first-byte");
    }
}

#[test]
fn the_help_states_the_defaults_the_library_applies() {
    use kvc::matching::{DEFAULT_CTX, DEFAULT_MIN_TOKENS, PROVENANCE};
    let env = TestEnv::new();
    let out = env.kvc().args(["match", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap().replace('\n', " ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        format!("--ctx [default: {DEFAULT_CTX}]"),
        format!("--kv-cache-min-tokens [default: {DEFAULT_MIN_TOKENS}]"),
        format!("--ctx {DEFAULT_CTX}, --min-tokens {DEFAULT_MIN_TOKENS}"),
        "ds4_kvstore.c at b030961".to_string(),
    ] {
        assert!(help.contains(&want), "{want:?} not in: {help}");
    }
    assert!(PROVENANCE.contains("b030961"));
}
