//! Property tests: valid specs round-trip through `Display`, and arbitrary
//! strings never make `parse` panic.

use execnet_xspec::{Kind, XSpec};
use proptest::prelude::*;

/// A value that can sit in any part: no "//", and no trailing "/" (only the
/// last part may end with "/", see `last_value`).
fn value() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 .:=_/-]{0,12}".prop_map(|mut value| {
        while value.contains("//") {
            value = value.replace("//", "/");
        }
        value.trim_end_matches('/').to_owned()
    })
}

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,8}"
}

/// A gateway id: never empty.
fn id() -> impl Strategy<Value = String> {
    value().prop_filter("an id is not empty", |v| !v.is_empty())
}

fn transport() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("popen".to_owned())),
        "[a-z][a-z0-9 .@-]{0,10}".prop_map(|args| Some(format!("ssh={args}"))),
        ("[a-z0-9.]{1,10}", any::<u16>())
            .prop_map(|(host, port)| Some(format!("socket={host}:{port}"))),
    ]
}

fn option_part() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        value().prop_map(|v| ("python".to_owned(), format!("python={v}"))),
        value().prop_map(|v| ("chdir".to_owned(), format!("chdir={v}"))),
        id().prop_map(|v| ("id".to_owned(), format!("id={v}"))),
        id().prop_map(|v| ("via".to_owned(), format!("via={v}"))),
        value().prop_map(|v| ("ssh_config".to_owned(), format!("ssh_config={v}"))),
        value().prop_map(|v| ("token_file".to_owned(), format!("token_file={v}"))),
        any::<i32>().prop_map(|n| ("nice".to_owned(), format!("nice={n}"))),
        Just((
            "dont_write_bytecode".to_owned(),
            "dont_write_bytecode".to_owned()
        )),
        prop_oneof![Just("thread"), Just("main_thread_only")]
            .prop_map(|m| ("execmodel".to_owned(), format!("execmodel={m}"))),
        ("[A-Z_][A-Z0-9_]{0,6}", value())
            .prop_map(|(name, v)| (format!("env:{name}"), format!("env:{name}={v}"))),
        (word(), value()).prop_map(|(key, v)| (format!("x{key}"), format!("x{key}={v}"))),
        word().prop_map(|key| (format!("x{key}"), format!("x{key}"))),
    ]
}

/// A valid spec string built from random parts (duplicate keys dropped).
fn valid_spec() -> impl Strategy<Value = String> {
    (
        transport(),
        prop::collection::vec(option_part(), 0..8),
        0usize..9,
        "([a-z]{1,4}/?){0,2}",
    )
        .prop_map(|(transport, options, at, last_chdir)| {
            let mut keys = Vec::new();
            let mut parts: Vec<String> = Vec::new();
            for (key, part) in options {
                if !keys.contains(&key) {
                    keys.push(key);
                    parts.push(part);
                }
            }
            if let Some(transport) = transport {
                parts.insert(at.min(parts.len()), transport);
            }
            if !keys.iter().any(|key| key == "chdir") {
                // The last part may end with "/".
                parts.push(format!("chdir=/{last_chdir}"));
            }
            parts.join("//")
        })
}

proptest! {
    #[test]
    fn valid_specs_round_trip(text in valid_spec()) {
        let spec = XSpec::parse(&text).map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))?;
        prop_assert_eq!(spec.to_string(), text.clone());
        prop_assert_eq!(XSpec::parse(&spec.to_string()), Ok(spec.clone()));
        let transports = ["popen", "ssh=", "socket="];
        if !transports.iter().any(|t| text.split("//").any(|part| part.starts_with(t))) {
            prop_assert_eq!(spec.kind(), &Kind::Popen);
        }
    }

    #[test]
    fn set_id_keeps_specs_round_tripping(text in valid_spec(), id in "[a-z0-9/]{1,6}") {
        let mut spec = XSpec::parse(&text).map_err(|err| TestCaseError::fail(err.to_string()))?;
        let before = spec.clone();
        match spec.set_id(&id) {
            Ok(()) => {
                prop_assert_eq!(spec.id(), Some(id.as_str()));
                prop_assert_eq!(XSpec::parse(&spec.to_string()), Ok(spec));
            }
            Err(_) => prop_assert_eq!(spec, before),
        }
    }

    #[test]
    fn any_string_parses_or_errors(text in any::<String>()) {
        if let Ok(spec) = XSpec::parse(&text) {
            prop_assert_eq!(spec.to_string(), text);
            prop_assert_eq!(XSpec::parse(&spec.to_string()), Ok(spec));
        }
    }

    #[test]
    fn spec_like_strings_parse_or_error(
        text in "(popen|ssh|socket|id|nice|env:|execmodel|installvia|thread|_|=|/|//|:|[a-z0-9 ]){0,16}"
    ) {
        execnet_xspec::fuzz_parse(text.as_bytes());
    }
}
