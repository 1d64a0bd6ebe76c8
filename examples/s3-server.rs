//! A local S3 server for trying `kvc push` and `kvc pull` (README.md,
//! "Remotes"): s3s-fs over a directory, on 127.0.0.1. For tests and
//! walkthroughs only; it is not part of kvc.
//!
//!     cargo run --example s3-server -- [--root DIR] [--port N] [--bucket NAME] [--until-eof]
//!
//! Prints the environment for kvc, then serves until interrupted (Ctrl-C),
//! or with `--until-eof` until its standard input closes (for scripts).

#[path = "../tests/support/s3server.rs"]
mod s3server;

use std::io::{Read, Write};

fn main() {
    let mut root: Option<std::path::PathBuf> = None;
    let mut port: u16 = 0;
    let mut bucket = "kvc-demo".to_string();
    let mut until_eof = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&a));
        match a.as_str() {
            "--root" => root = Some(value().into()),
            "--port" => port = value().parse().unwrap_or_else(|_| usage("--port")),
            "--bucket" => bucket = value(),
            "--until-eof" => until_eof = true,
            _ => usage(&a),
        }
    }
    let root = root.unwrap_or_else(|| std::env::temp_dir().join("kvc-s3-server"));
    std::fs::create_dir_all(&root).expect("create the root directory");
    let server = s3server::S3Server::start(&root, port).expect("start the server");
    server.create_bucket(&bucket).expect("create the bucket");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "# s3s-fs (a test server) on {}, bucket {bucket}, objects under {}",
        server.endpoint,
        root.join(&bucket).display()
    );
    for (k, v) in server.env() {
        let _ = writeln!(out, "export {k}={v}");
    }
    let _ = writeln!(out, "export KVC_REMOTE=s3://{bucket}/fleet");
    let _ = out.flush();
    drop(out);
    if !until_eof {
        loop {
            std::thread::park();
        }
    }
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(server);
}

fn usage(at: &str) -> ! {
    eprintln!("s3-server: bad argument {at:?}; usage: s3-server [--root DIR] [--port N] [--bucket NAME] [--until-eof]");
    std::process::exit(2)
}
