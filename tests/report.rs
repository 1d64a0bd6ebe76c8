//! `kvc report`: one self-contained HTML file whose SVGs parse, and into
//! which no text from a checkpoint or a log gets unescaped.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn report(env: &TestEnv, dir: &Path, extra: &[&str]) -> (PathBuf, String) {
    let out = env.root.path().join("report.html");
    let now = NOW.to_string();
    let mut c = env.kvc();
    c.args(["report", "--now", &now, "-o"])
        .arg(&out)
        .args(extra)
        .arg(dir);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = fs::read_to_string(&out).unwrap();
    (out, html)
}

/// Every `<svg>…</svg>` of the page, each parsed alone.
fn svgs(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<svg") {
        let end = rest[i..].find("</svg>").expect("closed") + i + "</svg>".len();
        out.push(rest[i..end].to_string());
        rest = &rest[end..];
    }
    out
}

/// The page parsed as XML (it is polyglot HTML5): structure, no script,
/// no reference to anything outside it.
fn check_document(html: &str) -> roxmltree::Document<'_> {
    assert!(html.starts_with("<!DOCTYPE html>\n"));
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(html, opts)
        .unwrap_or_else(|e| panic!("not well-formed: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "html");
    let names: Vec<&str> = root
        .children()
        .filter(|n| n.is_element())
        .map(|n| n.tag_name().name())
        .collect();
    assert_eq!(names, ["head", "body"]);
    for n in doc.descendants().filter(|n| n.is_element()) {
        let tag = n.tag_name().name().to_ascii_lowercase();
        assert!(
            ![
                "script",
                "iframe",
                "object",
                "embed",
                "link",
                "img",
                "foreignObject"
            ]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&tag)),
            "<{tag}>"
        );
        for a in n.attributes() {
            let name = a.name().to_ascii_lowercase();
            assert!(!name.starts_with("on"), "event handler {name}");
            assert!(
                !["src", "href"].contains(&name.as_str()),
                "{name}={}",
                a.value()
            );
        }
    }
    doc
}

#[test]
fn a_valid_page_whose_charts_parse() {
    let env = TestEnv::new();
    mixed_cache(&env);
    let a = Ckpt::new(chat("chain")).reason(REASON_COLD).mainline();
    let mut t = a.text.clone();
    t.extend_from_slice(b" and more");
    env.add(&a);
    env.add(&Ckpt::new(t).reason(REASON_CONTINUED).mainline());
    let before = env.snapshot();
    let (path, html) = report(&env, &env.cache, &[]);
    assert_eq!(before, env.snapshot(), "report changed the cache");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let doc = check_document(&html);
    let svgs = svgs(&html);
    // Bytes by reason, by last use, the scatter, the forest.
    assert_eq!(svgs.len(), 4, "{html}");
    for s in &svgs {
        let d = roxmltree::Document::parse(s).unwrap_or_else(|e| panic!("{e}: {s}"));
        assert_eq!(d.root_element().tag_name().name(), "svg");
        assert_eq!(
            d.root_element().tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
    }
    let text: String = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    for want in [
        "Bytes by reason",
        "Reclaimable",
        "Prefix forest",
        "unloadable",
        "superseded",
    ] {
        assert!(text.contains(want), "{want}");
    }
    assert!(!text.contains("Engine activity"));
    // Nothing left beside it.
    let names: Vec<String> = fs::read_dir(env.root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp.")), "{names:?}");
}

#[test]
fn with_a_log_writes_hits_and_evictions_per_day() {
    let env = TestEnv::new();
    env.add(&Ckpt::new(chat("x")).mainline());
    let log = env.root.path().join("server.log");
    let d1 = ds4log::stamp(8, 1, "10:00:00");
    let d2 = ds4log::stamp(8, 2, "10:00:00");
    fs::write(
        &log,
        [
            format!(
                "{d1}{}",
                ds4log::stored(8192, "evict", "token-text", 100 << 20, 10.0)
            ),
            format!("{d1}{}", ds4log::hit(8192, 5.0, false, "/c/x.kv")),
            format!("{d2}{}", ds4log::evicted(8192, 0, 100 << 20, "/c/x.kv")),
        ]
        .join("\n"),
    )
    .unwrap();
    let (_, html) = report(&env, &env.cache, &["--log", log.to_str().unwrap()]);
    let doc = check_document(&html);
    assert_eq!(
        svgs(&html).len(),
        5,
        "forest has no chain here; two log charts"
    );
    for s in svgs(&html) {
        roxmltree::Document::parse(&s).unwrap();
    }
    let text: String = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    assert!(text.contains("Engine activity"));
    assert!(text.contains("Bytes written per day"));
    assert!(text.contains("Hits and evictions per day"));
}

#[test]
fn no_checkpoint_text_reaches_the_page_unescaped() {
    let env = TestEnv::new();
    let hostile = "<script>alert(\"x&y\")</script> 'q' & \x1b[31mred\x1b]0;title\x07 \u{202e}rtl";
    let a = Ckpt::new(chat(hostile)).reason(REASON_COLD).mainline();
    let mut longer = a.text.clone();
    longer.extend_from_slice(b"<img src=x onerror=alert(1)>");
    env.add(&a);
    env.add(&Ckpt::new(longer).reason(REASON_CONTINUED).mainline());
    // A directory name and a log line with markup too.
    let dir = env.root.path().join("c<b>&\"d'");
    fs::rename(&env.cache, &dir).unwrap();
    let log = env.root.path().join("server.log");
    fs::write(
        &log,
        "ds4-server: kv cache </p><script>alert(2)</script> \x1b[2J\n",
    )
    .unwrap();
    let (_, html) = report(&env, &dir, &["--log", log.to_str().unwrap()]);
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "raw script tag");
    assert!(!lower.contains("<img"), "raw img tag");
    assert!(!lower.contains("<b>"), "raw b tag");
    assert!(!html.contains('\x1b') && !html.contains('\x07') && !html.contains('\u{202e}'));
    let doc = check_document(&html);
    let text: String = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    // The title is there, as text: escaped, then read back by the parser.
    assert!(
        text.contains("<script>alert(\"x&y\")</script> 'q' &"),
        "{text}"
    );
    assert!(text.contains("\\e[31mred"), "{text}");
    assert!(text.contains("c<b>&\"d'"), "directory name");
    assert!(
        text.contains("</p><script>alert(2)</script>"),
        "unparsed log line"
    );
    for s in svgs(&html) {
        roxmltree::Document::parse(&s).unwrap();
    }
}

#[test]
fn many_checkpoints_are_sampled_in_the_scatter() {
    let env = TestEnv::new();
    for i in 0..60 {
        env.add(
            &Ckpt::new(chat(&format!("conversation {i}")))
                .mainline()
                .opaque_payload(10),
        );
    }
    let (_, html) = report(&env, &env.cache, &[]);
    check_document(&html);
    let scatter = &svgs(&html)[2];
    let dots = scatter.matches("<circle").count();
    // 60 checkpoints and the legend's three.
    assert_eq!(dots, 63, "{scatter}");
}
