//! Quoting for the device's POSIX shell: every word of every script the
//! runner sends is single-quoted, so no folder name, file name or serial
//! can run anything.

/// Quotes one word for a POSIX shell: wrapped in single quotes, with each
/// embedded single quote written as `'\''`. Nothing inside is interpreted.
///
/// ```
/// use tunas_profiler::remote::shell_quote;
/// assert_eq!(shell_quote("a b"), "'a b'");
/// assert_eq!(shell_quote("it's; rm x"), r"'it'\''s; rm x'");
/// ```
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A command line of quoted words.
pub fn shell_words<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn quoting_keeps_every_byte_and_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let evil = [
            "plain",
            "a b",
            "it's",
            "a b'; touch INJECTED; '",
            "$(touch INJECTED)",
            "`touch INJECTED`",
            "x\"y\\z",
            "new\nline",
            "",
        ];
        let script = format!("printf '%s\\0' {}", shell_words(&evil));
        let out = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let got: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .split('\0')
            .map(String::from)
            .collect();
        assert_eq!(&got[..evil.len()], &evil.map(String::from)[..]);
        assert!(!dir.path().join("INJECTED").exists());
    }
}
