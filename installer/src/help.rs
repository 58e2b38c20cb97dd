//! `mirrorlab man`: one man page (section 1) for the whole CLI, from the same clap
//! definitions `--help` prints: the top command's synopsis and options, its global
//! options under their own heading, then one subsection per verb with its options and
//! examples (the `Examples:` block of each verb's `--help`).

use std::io::Write;

/// The line that opens every verb's examples in `--help` (its `after_help`).
pub const EXAMPLES: &str = "Examples:";

/// Writes the man page of `cmd` (the `mirrorlab` command) as roff.
pub fn man_page(cmd: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let mut page = Vec::new();
    sections(cmd, &mut page)?;
    // Each section clap_mangen renders starts with the same two-line definition of the
    // apostrophe string: once is enough.
    let page = String::from_utf8_lossy(&page);
    let mut preamble_seen = false;
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        if line.starts_with(".ie \\n(.g .ds Aq") {
            let other = lines.next().unwrap_or_default();
            if !preamble_seen {
                writeln!(out, "{line}\n{other}")?;
            }
            preamble_seen = true;
            continue;
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn sections(cmd: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let name = cmd.get_name().to_string();
    let top = clap_mangen::Man::new(cmd.clone());
    top.render_title(out)?;
    top.render_name_section(out)?;
    top.render_synopsis_section(out)?;
    top.render_description_section(out)?;
    top.render_options_section(out)?;
    examples(&cmd, "SH", out)?;
    writeln!(out, ".SH COMMANDS")?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let full = format!("{name} {}", sub.get_name());
        writeln!(out, ".SS \"{full}\"")?;
        let man = clap_mangen::Man::new(sub.clone().bin_name(full.clone()));
        let mut text = Vec::new();
        man.render_synopsis_section(&mut text)?;
        man.render_description_section(&mut text)?;
        man.render_options_section(&mut text)?;
        // The verb's sections are subsections of its own entry, their headings bold
        // paragraphs.
        for line in String::from_utf8_lossy(&text).lines() {
            match line.strip_prefix(".SH ") {
                Some(heading) if heading.trim_matches('"') == "SYNOPSIS" => {}
                Some(heading) => writeln!(out, ".TP\n.B {}", heading.trim_matches('"'))?,
                None => writeln!(out, "{line}")?,
            }
        }
        examples(sub, "TP\n.B", out)?;
    }
    top.render_version_section(out)?;
    Ok(())
}

/// The `Examples:` block of `cmd`'s `--help`, as a heading (`.SH`, or a bold paragraph)
/// and the commands verbatim, one a line.
fn examples(cmd: &clap::Command, heading: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let Some(after) = cmd.get_after_help().map(|s| s.to_string()) else { return Ok(()) };
    let Some(body) = after.strip_prefix(EXAMPLES) else { return Ok(()) };
    writeln!(out, ".{heading} EXAMPLES\n.nf")?;
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        writeln!(out, "{}", escape(line))?;
    }
    writeln!(out, ".fi")
}

/// Roff text for one line: backslashes escaped, and a line that would read as a request
/// (a leading `.` or `'`) guarded.
fn escape(line: &str) -> String {
    let s = line.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> clap::Command {
        clap::Command::new("demo").version("1.0").about("A demo").after_help("Examples:\n  demo run x").subcommand(
            clap::Command::new("run")
                .about("Runs it")
                .arg(clap::Arg::new("what").help("What to run"))
                .after_help("Examples:\n  demo run --fast .hidden\n  demo run 'a\\b'"),
        )
    }

    #[test]
    fn the_page_has_every_verb_with_its_options_and_examples() {
        let mut out = Vec::new();
        man_page(demo(), &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.starts_with(".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.TH demo 1 "), "{page}");
        assert_eq!(page.matches(".ds Aq").count(), 2, "{page}");
        assert!(page.contains(".SH EXAMPLES\n.nf\ndemo run x\n.fi"), "{page}");
        assert!(page.contains(".SS \"demo run\""), "{page}");
        assert!(page.contains("What to run"), "{page}");
        assert!(page.contains("demo run \\-\\-fast .hidden\n"), "{page}");
        assert!(page.contains("demo run 'a\\eb'"), "{page}");
        assert!(!page.contains(".SH SYNOPSIS\n.SH"), "{page}");
    }

    #[test]
    fn a_line_that_looks_like_a_request_is_guarded() {
        assert_eq!(escape(".x"), "\\&.x");
        assert_eq!(escape("'x"), "\\&'x");
        assert_eq!(escape("a-b"), "a\\-b");
    }
}
