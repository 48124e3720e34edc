//! `python=` as a command line: words split as a POSIX shell (and Python's
//! `shlex.split`, which execnet uses) splits them.

/// Split `command` into words the way a POSIX shell does, without
/// expansions: blanks separate words, `'...'` is literal, `"..."` is
/// literal but for `\"` and `\\`, and a backslash outside quotes takes the
/// next character as it is. This is Python's `shlex.split(command)`, which
/// execnet applies to `python=`, so `python="/opt/my py/bin/python" -X dev`
/// and `python=/opt/my\ py/bin/python` both name a path with a space.
///
/// An unclosed quote or a trailing backslash is an error saying which.
///
/// ```
/// use execnet_xspec::split_command;
///
/// assert_eq!(split_command("sudo -u test python")?, ["sudo", "-u", "test", "python"]);
/// assert_eq!(split_command(r#""/u/test me/python" -e"#)?, ["/u/test me/python", "-e"]);
/// assert_eq!(split_command(r"/hans\ alt/bin/python")?, ["/hans alt/bin/python"]);
/// assert!(split_command("'python").is_err());
/// # Ok::<(), &'static str>(())
/// ```
pub fn split_command(command: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut word = String::new();
    // a word has started (so that "" is a word of its own)
    let mut started = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            '\\' => {
                word.push(
                    chars
                        .next()
                        .ok_or("a backslash at the end escapes nothing")?,
                );
                started = true;
            }
            '\'' => {
                loop {
                    match chars.next().ok_or("a single quote is not closed")? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
                started = true;
            }
            '"' => {
                loop {
                    match chars.next().ok_or("a double quote is not closed")? {
                        '"' => break,
                        '\\' => match chars.next().ok_or("a double quote is not closed")? {
                            c @ ('"' | '\\') => word.push(c),
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => word.push(c),
                    }
                }
                started = true;
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split_command;

    #[test]
    fn words_as_pythons_shlex_splits_them() {
        let cases: &[(&str, &[&str])] = &[
            ("python", &["python"]),
            ("  python3   -X  dev ", &["python3", "-X", "dev"]),
            ("sudo -u test python", &["sudo", "-u", "test", "python"]),
            (r"/hans\ alt/bin/python", &["/hans alt/bin/python"]),
            (r#""/u/test me/python" -e"#, &["/u/test me/python", "-e"]),
            ("'it''s'", &["its"]),
            (r#"a"b c"d"#, &["ab cd"]),
            (r#""a\"b\\c\d""#, &[r#"a"b\c\d"#]),
            (r"'a\b'", &[r"a\b"]),
            ("'' x", &["", "x"]),
            ("", &[]),
            ("a#b #c", &["a#b", "#c"]),
        ];
        for (input, words) in cases {
            let expected: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            assert_eq!(split_command(input), Ok(expected), "{input:?}");
        }
    }

    #[test]
    fn unclosed_quotes_and_trailing_backslash_are_errors() {
        for input in ["'a", "\"a", "a\\", "\"a\\"] {
            assert!(split_command(input).is_err(), "{input:?}");
        }
    }
}
