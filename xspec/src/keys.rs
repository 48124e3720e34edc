//! The keys the engine acts on, and the check that a spec uses only those.

use crate::{ParseError, XSpec};

/// Every key the engine acts on when it opens a gateway (besides `env:NAME`
/// and keys starting with [`USER_KEY_PREFIX`]).
pub const KNOWN_KEYS: &[&str] = &[
    "popen",
    "ssh",
    "socket",
    "via",
    "installvia",
    "python",
    "chdir",
    "nice",
    "env:NAME",
    "dont_write_bytecode",
    "execmodel",
    "id",
    "ssh_config",
    "ssh_multiplex",
    "token_file",
    "spawn",
    "spawn_linger",
    "insecure_no_auth",
];

/// Keys starting with this prefix (`x-owner=ci`) belong to the program that
/// writes the spec: the engine ignores them, and opening a gateway accepts
/// them. Every other unknown key is an error at open, so that a typo
/// (`chdri=`, `shh=host`, `popn`) never runs code somewhere the user did not
/// mean.
pub const USER_KEY_PREFIX: &str = "x-";

impl XSpec {
    /// Checks that every key is one the engine acts on ([`KNOWN_KEYS`],
    /// `env:NAME`, or a key of the program's own, starting with
    /// [`USER_KEY_PREFIX`]). Opening a gateway calls this; parsing does not,
    /// so a spec can carry data (see [`get`](XSpec::get)).
    ///
    /// # Errors
    ///
    /// [`ParseError::UnknownKey`] for the first other key, with the nearest
    /// known key when one is a likely typo.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_xspec::{ParseError, XSpec};
    ///
    /// let spec = XSpec::parse("popen//chdri=work")?; // parsing keeps it
    /// let err = spec.check_keys().unwrap_err();
    /// assert!(matches!(&err, ParseError::UnknownKey { suggestion: Some("chdir"), .. }));
    /// assert!(err.to_string().contains("did you mean \"chdir\"?"));
    ///
    /// assert!(XSpec::parse("ssh=host//x-owner=ci//env:A=1")?.check_keys().is_ok());
    /// # Ok::<(), ParseError>(())
    /// ```
    pub fn check_keys(&self) -> Result<(), ParseError> {
        for (key, value) in self.parts() {
            if key.starts_with(USER_KEY_PREFIX)
                || key
                    .strip_prefix("env:")
                    .is_some_and(|name| !name.is_empty())
                || KNOWN_KEYS.contains(&key)
            {
                continue;
            }
            let part = match value {
                Some(value) => format!("{key}={value}"),
                None => key.to_owned(),
            };
            return Err(ParseError::UnknownKey {
                part,
                key: key.to_owned(),
                suggestion: nearest_known(key),
            });
        }
        Ok(())
    }
}

/// The known key a typo most likely meant: at most one edit away for short
/// keys, two for longer ones (an edit: insert, delete, replace, or swap two
/// neighbours).
fn nearest_known(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    if lower.starts_with("env") && lower.contains(':') {
        return Some("env:NAME");
    }
    let limit = if key.chars().count() <= 4 { 1 } else { 2 };
    KNOWN_KEYS
        .iter()
        .filter(|known| !known.contains(':'))
        .map(|known| (edit_distance(&lower, known), *known))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Optimal-string-alignment distance: Levenshtein plus adjacent swaps.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows suffice: the current one and the two before it.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(spec: &str) -> (String, Option<&'static str>) {
        match XSpec::parse(spec).expect("parses").check_keys() {
            Err(ParseError::UnknownKey {
                key, suggestion, ..
            }) => (key, suggestion),
            other => panic!("{spec}: expected UnknownKey, got {other:?}"),
        }
    }

    #[test]
    fn typos_of_transports_and_keys_are_caught_with_a_suggestion() {
        assert_eq!(unknown("popn"), ("popn".into(), Some("popen")));
        assert_eq!(unknown("shh=build-host"), ("shh".into(), Some("ssh")));
        assert_eq!(unknown("sockte=h:1"), ("sockte".into(), Some("socket")));
        assert_eq!(unknown("popen//chdri=x"), ("chdri".into(), Some("chdir")));
        assert_eq!(
            unknown("popen//pyhton=3"),
            ("pyhton".into(), Some("python"))
        );
        assert_eq!(
            unknown("popen//ENV:A=1"),
            ("ENV:A".into(), Some("env:NAME"))
        );
        assert_eq!(unknown("popen//id=a//Id=b"), ("Id".into(), Some("id")));
        assert_eq!(unknown("popen//exec_model=thread").1, Some("execmodel"));
    }

    #[test]
    fn far_from_every_key_there_is_no_suggestion() {
        assert_eq!(unknown("popen//colour=blue"), ("colour".into(), None));
        assert_eq!(unknown("vagrant_ssh=box"), ("vagrant_ssh".into(), None));
    }

    #[test]
    fn the_message_names_the_part_and_the_way_out() {
        let err = XSpec::parse("popen//chdri=work")
            .expect("parses")
            .check_keys()
            .expect_err("unknown");
        let text = err.to_string();
        assert!(text.contains("\"chdri=work\""), "{text}");
        assert!(text.contains("did you mean \"chdir\"?"), "{text}");
        assert!(text.contains("x-"), "{text}");
        let text = XSpec::parse("popen//colour=blue")
            .expect("parses")
            .check_keys()
            .expect_err("unknown")
            .to_string();
        assert!(text.contains("known keys: popen, ssh"), "{text}");
    }

    #[test]
    fn every_key_the_engine_knows_passes() {
        let spec = "ssh=h//via=g//python=p//chdir=d//nice=1//env:A=1//dont_write_bytecode\
                    //execmodel=thread//id=i//ssh_config=c//ssh_multiplex=no//x-mine=1";
        assert_eq!(XSpec::parse(spec).expect("parses").check_keys(), Ok(()));
        let socket = "socket=h:1//installvia=g//token_file=t//insecure_no_auth";
        assert_eq!(XSpec::parse(socket).expect("parses").check_keys(), Ok(()));
    }

    #[test]
    fn edit_distance_counts_swaps_as_one() {
        assert_eq!(edit_distance("chdri", "chdir"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
