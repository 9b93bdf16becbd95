//! The README's "Try it" examples work as printed. A fresh, unseeded `forgebridge serve` with the
//! default admin token is started, as the README's first command would start it, and every
//! `curl` block of the section is run in order with `bash -c`; its output is compared with the
//! ```http or ```json block that follows it: status line, every header shown (and no other
//! header but `date`, `content-length` and `x-request-id`), and the body, which must be equal,
//! or, where the README cuts it at `…`, contain every fragment. Timestamps are normalised.
//!
//! The server listens on a free port but is told its public URL is `http://127.0.0.1:8080`, so
//! only the commands are rewritten to reach it; outputs are compared exactly as printed.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::Instance;

const README_URL: &str = "http://127.0.0.1:8080";
const SECTION_START: &str = "### Try it";
const SECTION_END: &str = "## Proxying a real forge";
/// Response headers the README leaves out.
const UNSHOWN_HEADERS: [&str; 3] = ["date", "content-length", "x-request-id"];

/// A fenced block of the README: its language, its text and the line its fence opens on.
struct Block {
    lang: String,
    body: String,
    line: usize,
}

/// A `curl` example and the output block printed after it.
struct Example {
    line: usize,
    command: String,
    output: Option<Block>,
}

/// The fenced blocks of `text`, in order.
fn blocks(text: &str, first_line: usize) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        match open.take() {
            None => {
                if let Some(lang) = line.strip_prefix("```") {
                    open = Some(Block {
                        lang: lang.trim().to_string(),
                        body: String::new(),
                        line: first_line + i,
                    });
                }
            }
            Some(mut block) => {
                if line.trim_end() == "```" {
                    out.push(block);
                } else {
                    block.body.push_str(line);
                    block.body.push('\n');
                    open = Some(block);
                }
            }
        }
    }
    out
}

/// The curl examples of the README's "Try it" section; an error when the section is missing or
/// holds none.
fn examples(readme: &str) -> Result<Vec<Example>, String> {
    let start = readme
        .find(SECTION_START)
        .ok_or_else(|| format!("README has no {SECTION_START:?} section"))?;
    let len = readme[start..]
        .find(SECTION_END)
        .ok_or_else(|| format!("README has no {SECTION_END:?} after {SECTION_START:?}"))?;
    let first_line = readme[..start].lines().count() + 1;
    let mut blocks = blocks(&readme[start..start + len], first_line).into_iter();
    let mut examples = Vec::new();
    let mut pending: Option<Block> = None;
    while let Some(block) = pending.take().or_else(|| blocks.next()) {
        if block.lang != "sh" || !block.body.starts_with("curl") {
            continue;
        }
        let output = match blocks.next() {
            Some(next) if next.lang == "http" || next.lang == "json" => Some(next),
            other => {
                pending = other;
                None
            }
        };
        examples.push(Example {
            line: block.line,
            command: block.body,
            output,
        });
    }
    if examples.is_empty() {
        return Err(format!(
            "the README's {SECTION_START:?} section has no curl examples"
        ));
    }
    Ok(examples)
}

/// Replaces every `YYYY-MM-DDTHH:MM:SSZ` timestamp with `TS`.
fn normalise_timestamps(text: &str) -> String {
    const SHAPE: &[u8; 20] = b"0000-00-00T00:00:00Z";
    let bytes = text.as_bytes();
    let matches_at = |i: usize| {
        bytes.len() >= i + SHAPE.len()
            && SHAPE.iter().zip(&bytes[i..]).all(|(s, b)| match s {
                b'0' => b.is_ascii_digit(),
                _ => s == b,
            })
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if matches_at(i) {
            out.extend_from_slice(b"TS");
            i += SHAPE.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("only ASCII was replaced")
}

/// What differs between the printed output block and curl's actual output.
fn compare(output: Option<&Block>, actual: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let (expected_body, actual_body) = match output {
        None => {
            problems.push("no ```http or ```json output block follows".to_string());
            return problems;
        }
        Some(block) if block.lang == "http" => {
            let expected = normalise_timestamps(&block.body);
            let (ehead, ebody) = expected.split_once("\n\n").unwrap_or((&expected, ""));
            let (ahead, abody) = actual.split_once("\n\n").unwrap_or((actual, ""));
            let elines: Vec<&str> = ehead.trim().lines().collect();
            let alines: Vec<&str> = ahead.trim().lines().collect();
            if elines.first() != alines.first() {
                problems.push(format!(
                    "status: expected {:?}, got {:?}",
                    elines.first().unwrap_or(&""),
                    alines.first().unwrap_or(&"")
                ));
            }
            for line in elines.iter().skip(1) {
                if !alines.contains(line) {
                    problems.push(format!("header missing: {line:?}"));
                }
            }
            for line in alines.iter().skip(1) {
                let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
                if !UNSHOWN_HEADERS.contains(&name.as_str()) && !elines.contains(line) {
                    problems.push(format!("header not shown: {line:?}"));
                }
            }
            (ebody.to_string(), abody.to_string())
        }
        Some(block) => (normalise_timestamps(&block.body), actual.to_string()),
    };
    let (expected_body, actual_body) = (expected_body.trim(), actual_body.trim());
    if expected_body.contains('…') {
        for piece in expected_body.split('…') {
            let piece = piece.trim().trim_matches(',').trim();
            if !piece.is_empty() && !actual_body.contains(piece) {
                problems.push(format!("fragment not in body: {piece:?}"));
            }
        }
    } else if expected_body != actual_body {
        problems.push("body differs".to_string());
    }
    problems
}

/// The README's server: its defaults, at a free port, with `--public-url` naming the README's
/// URL; settings from the environment would make it no longer the README's server.
fn readme_server() -> Instance {
    Instance::start_with(|cmd| {
        cmd.arg("--public-url").arg(README_URL);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("FORGEBRIDGE") {
                cmd.env_remove(key);
            }
        }
    })
}

/// Runs `command` from the README against `server`, curl made quiet but for errors, and returns
/// curl's output with CRLF turned into LF and timestamps normalised.
fn run(command: &str, server: &Instance) -> Result<String, String> {
    let rewritten = command.replace(README_URL, &server.url);
    if rewritten.contains(":8080") {
        return Err("the command reaches port 8080 other than as http://127.0.0.1:8080".into());
    }
    // -q (first) ignores any ~/.curlrc; no proxy may stand between curl and the server.
    let rewritten = rewritten.replacen("curl ", "curl -q -sS --max-time 60 ", 1);
    let out = Command::new("bash")
        .arg("-c")
        .arg(&rewritten)
        .env("NO_PROXY", "*")
        .env("no_proxy", "*")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    if !out.status.success() {
        return Err(format!(
            "curl failed ({}): {}\n  output: {stdout}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(normalise_timestamps(&stdout))
}

/// Runs every example of `readme` in order against a fresh server. `Ok` with the number of
/// examples when all match; otherwise a report of every mismatch.
fn check(readme: &str) -> Result<usize, String> {
    let examples = examples(readme)?;
    let server = readme_server();
    let mut failures = Vec::new();
    for example in &examples {
        let (problems, actual) = match run(&example.command, &server) {
            Ok(actual) => (compare(example.output.as_ref(), &actual), actual),
            Err(e) => (vec![e], String::new()),
        };
        if problems.is_empty() {
            continue;
        }
        let expected = example.output.as_ref().map_or_else(
            || "(none)".to_string(),
            |b| {
                format!(
                    "(```{} at README.md:{})\n{}",
                    b.lang,
                    b.line,
                    b.body.trim_end()
                )
            },
        );
        failures.push(format!(
            "README.md:{}:\n{}\n  problems:\n    {}\n  expected {}\n  actual:\n{}",
            example.line,
            example.command.trim_end(),
            problems.join("\n    "),
            expected,
            actual.trim_end(),
        ));
    }
    if failures.is_empty() {
        return Ok(examples.len());
    }
    Err(format!(
        "{} of {} README examples do not work as printed (run in order against a fresh \
         server):\n\n{}\n\n--- server log ---\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n\n"),
        server.log_text()
    ))
}

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn require_curl() {
    let found = Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "curl is needed to run the README examples (apt-get install curl)"
    );
}

#[test]
fn readme_curl_examples_work_as_printed() {
    require_curl();
    match check(&readme()) {
        Ok(n) => eprintln!("{n} README examples work as printed"),
        Err(report) => panic!("{report}"),
    }
}

#[test]
fn a_wrong_status_in_the_readme_is_caught() {
    require_curl();
    let readme = readme();
    let (start, _) = readme
        .match_indices("HTTP/1.1 201 Created")
        .find(|(i, _)| *i > readme.find(SECTION_START).unwrap_or(usize::MAX))
        .expect("the Try it section shows a 201");
    let mut altered = readme.clone();
    altered.replace_range(
        start..start + "HTTP/1.1 201 Created".len(),
        "HTTP/1.1 200 OK",
    );
    let report = check(&altered).expect_err("an altered status must fail the check");
    assert!(
        report.contains(r#"status: expected "HTTP/1.1 200 OK", got "HTTP/1.1 201 Created""#),
        "{report}"
    );
    assert!(report.starts_with("1 of "), "{report}");
}

#[test]
fn a_section_without_curl_examples_fails() {
    let text = format!("{SECTION_START}\n\n```sh\ncargo test\n```\n\n{SECTION_END}\n");
    let err = check(&text).expect_err("no examples must fail");
    assert!(err.contains("no curl examples"), "{err}");
    assert!(check("# nothing here\n").is_err());
}

#[test]
fn output_blocks_are_compared_as_printed() {
    let http = |body: &str| Block {
        lang: "http".into(),
        body: body.into(),
        line: 1,
    };
    let shown = http("HTTP/1.1 200 OK\nx-a: 1\n\n{\"a\":1, … ,\"t\":\"2020-01-01T00:00:00Z\"}\n");
    let actual = "HTTP/1.1 200 OK\nx-a: 1\ndate: now\n\n{\"a\":1,\"b\":2,\"t\":\"TS\"}\n";
    assert!(compare(Some(&shown), actual).is_empty());
    let problems = compare(Some(&shown), "HTTP/1.1 404 Not Found\nx-b: 2\n\n{\"a\":2}");
    assert_eq!(
        problems,
        [
            r#"status: expected "HTTP/1.1 200 OK", got "HTTP/1.1 404 Not Found""#,
            r#"header missing: "x-a: 1""#,
            r#"header not shown: "x-b: 2""#,
            r#"fragment not in body: "{\"a\":1""#,
            r#"fragment not in body: "\"t\":\"TS\"}""#,
        ]
    );
    let json = Block {
        lang: "json".into(),
        body: "{\"a\":1}\n".into(),
        line: 1,
    };
    assert!(compare(Some(&json), "{\"a\":1}").is_empty());
    assert_eq!(compare(Some(&json), "{\"a\":10}"), ["body differs"]);
    assert_eq!(compare(None, "x").len(), 1);
}
