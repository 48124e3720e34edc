//! Unit tests of parsing, display and the setters.

use super::*;

fn parse(spec: &str) -> XSpec {
    XSpec::parse(spec).unwrap_or_else(|err| panic!("{spec:?}: {err}"))
}

fn err(spec: &str) -> ParseError {
    match XSpec::parse(spec) {
        Ok(parsed) => panic!("{spec:?} parsed as {parsed:?}"),
        Err(err) => err,
    }
}

#[test]
fn transports() {
    assert_eq!(parse("popen").kind(), &Kind::Popen);
    assert_eq!(parse("id=x").kind(), &Kind::Popen);
    assert_eq!(
        parse("ssh=-p 2222 host").kind(),
        &Kind::Ssh("-p 2222 host".into())
    );
    assert_eq!(
        parse("socket=[::1]:8888").kind(),
        &Kind::Socket("[::1]:8888".into())
    );
    assert_eq!(XSpec::default().to_string(), "popen");
    assert_eq!(XSpec::default(), parse("popen"));
}

#[test]
fn accessors() {
    let spec = parse(
        "ssh=h//via=gw0//python=py//chdir=d//nice=-2//env:A=1//dont_write_bytecode\
         //execmodel=thread//id=i//ssh_config=c//token_file=t//other=o=p//env:B",
    );
    assert_eq!(spec.via(), Some("gw0"));
    assert_eq!(spec.python(), Some("py"));
    assert_eq!(spec.chdir(), Some("d"));
    assert_eq!(spec.nice(), Some(-2));
    assert!(spec.dont_write_bytecode());
    assert_eq!(spec.get("dont_write_bytecode"), Some(""));
    assert_eq!(spec.execmodel(), Some("thread"));
    assert_eq!(spec.id(), Some("i"));
    assert_eq!(spec.ssh_config(), Some("c"));
    assert_eq!(spec.token_file(), Some("t"));
    assert_eq!(spec.installvia(), None);
    assert_eq!(spec.get("other"), Some("o=p"));
    assert_eq!(spec.get("ssh"), Some("h"));
    assert_eq!(spec.env().collect::<Vec<_>>(), [("A", "1"), ("B", "")]);
    assert_eq!(parse("socket=h:1//installvia=g").installvia(), Some("g"));
    assert_eq!(parse("installvia=g//socket=h:1").installvia(), Some("g"));
}

#[test]
fn display_keeps_the_string() {
    for text in [
        "popen",
        "id=x",
        "ssh=-p 2222 host//python=python3//env:FOO=a=b",
        "popen//zzz//aaa=1//bbb=",
        "chdir=/tmp/",
        "popen//chdir=/a///b",
        "socket=h:0",
        " popen ",
    ] {
        let spec = parse(text);
        assert_eq!(spec.to_string(), text);
        assert_eq!(parse(&spec.to_string()), spec);
    }
    // "a///b" splits at the first "//": the second part is "/b".
    assert_eq!(parse("popen//chdir=/a///b").get("chdir"), Some("/a"));
    assert_eq!(parse("popen//chdir=/a///b").get("/b"), Some(""));
}

#[test]
fn errors() {
    assert_eq!(err(""), ParseError::EmptySpec);
    assert_eq!(
        err("popen////id=x"),
        ParseError::EmptyPart {
            spec: "popen////id=x".into(),
            index: 2
        }
    );
    assert!(matches!(
        err("//popen"),
        ParseError::EmptyPart { index: 1, .. }
    ));
    assert!(matches!(
        err("popen//"),
        ParseError::EmptyPart { index: 2, .. }
    ));
    assert_eq!(err("=x"), ParseError::EmptyKey { part: "=x".into() });
    assert_eq!(
        err("_x=1"),
        ParseError::ReservedKey {
            part: "_x=1".into()
        }
    );
    assert_eq!(
        err("id=a//id=b"),
        ParseError::DuplicateKey {
            part: "id=b".into(),
            key: "id".into()
        }
    );
    assert!(matches!(
        err("env:A=1//env:A=2"),
        ParseError::DuplicateKey { .. }
    ));
    assert_eq!(
        err("popen//ssh=h"),
        ParseError::TwoTransports {
            part: "ssh=h".into(),
            first: "popen".into()
        }
    );
    assert!(matches!(
        err("ssh=a//socket=b:1"),
        ParseError::TwoTransports { .. }
    ));
    assert!(matches!(
        err("ssh=a//ssh=b"),
        ParseError::DuplicateKey { .. }
    ));
    for nice in ["nice=abc", "nice", "nice=", "nice=1.5", "nice=99999999999"] {
        assert_eq!(err(nice), ParseError::BadNice { part: nice.into() });
    }
    for empty in ["ssh", "ssh=", "ssh=  ", "socket", "socket="] {
        assert!(
            matches!(err(empty), ParseError::EmptyTransportValue { .. }),
            "{empty}"
        );
    }
    for python in [r#"python='/opt/py"#, r#"python="a b"#, r"python=py\"] {
        assert!(
            matches!(err(python), ParseError::BadPython { .. }),
            "{python}"
        );
    }
    let quoted = XSpec::parse(r#"popen//python="/opt/my py/python" -X dev"#).expect("quoted");
    assert_eq!(quoted.python(), Some(r#""/opt/my py/python" -X dev"#));
    for model in ["execmodel=eventlet", "execmodel", "execmodel=Thread"] {
        assert_eq!(err(model), ParseError::BadExecmodel { part: model.into() });
    }
    assert_eq!(
        err("ssh=h//installvia=g"),
        ParseError::InstallviaWithoutSocket {
            part: "installvia=g".into()
        }
    );
    assert!(matches!(
        err("installvia=g"),
        ParseError::InstallviaWithoutSocket { .. }
    ));
    for (address, reason) in [
        ("socket=host", "missing \":PORT\""),
        ("socket=host:http", "the port is not a number"),
        ("socket=host:", "the port is not a number"),
        ("socket=host:+80", "the port is not a number"),
        ("socket=host:65536", "the port is out of range 0-65535"),
        ("socket=:80", "empty host"),
    ] {
        assert_eq!(
            err(address),
            ParseError::BadSocketAddress {
                part: address.into(),
                reason
            }
        );
    }
    assert_eq!(
        err("env:=1"),
        ParseError::EmptyEnvName {
            part: "env:=1".into()
        }
    );
}

#[test]
fn error_messages_name_the_part() {
    for (spec, part) in [
        ("popen//nice=abc", "nice=abc"),
        ("popen//ssh=h", "ssh=h"),
        ("id=a//_private", "_private"),
        ("id=a//id=b", "id=b"),
        ("socket=h:x", "socket=h:x"),
        ("popen//execmodel=greenlet", "execmodel=greenlet"),
    ] {
        let message = err(spec).to_string();
        assert!(message.contains(&format!("{part:?}")), "{message}");
    }
    assert!(err("popen////id=x").to_string().contains("empty part #2"));
}

#[test]
fn set_id_replaces_or_appends() {
    let mut spec = parse("ssh=h//id=old//python=p");
    spec.set_id("new").unwrap();
    assert_eq!(spec.to_string(), "ssh=h//id=new//python=p");
    let mut spec = parse("popen");
    spec.set_id("gw0").unwrap();
    assert_eq!(spec.to_string(), "popen//id=gw0");
    assert_eq!(parse(&spec.to_string()), spec);
    // A part ending in "/" stays last so that the string still splits
    // where it should.
    let mut spec = parse("popen//chdir=/tmp/");
    spec.set_id("gw0").unwrap();
    assert_eq!(spec.to_string(), "popen//id=gw0//chdir=/tmp/");
    assert_eq!(parse(&spec.to_string()), spec);
    let before = spec.clone();
    assert!(matches!(
        spec.set_id("a//b"),
        Err(ParseError::Unrepresentable { .. })
    ));
    assert!(matches!(
        spec.set_id("gw/"),
        Err(ParseError::Unrepresentable { .. })
    ));
    assert_eq!(spec, before);
}

#[test]
fn set_validates_like_parse() {
    let mut spec = XSpec::default();
    assert!(matches!(
        spec.set("ssh", Some("h")),
        Err(ParseError::TwoTransports { .. })
    ));
    assert!(matches!(
        spec.set("nice", Some("x")),
        Err(ParseError::BadNice { .. })
    ));
    assert!(matches!(
        spec.set("_k", None),
        Err(ParseError::ReservedKey { .. })
    ));
    assert!(matches!(
        spec.set("", None),
        Err(ParseError::EmptyKey { .. })
    ));
    assert!(matches!(
        spec.set("a=b", None),
        Err(ParseError::Unrepresentable { .. })
    ));
    assert!(matches!(
        spec.set("installvia", Some("g")),
        Err(ParseError::InstallviaWithoutSocket { .. })
    ));
    assert_eq!(spec, XSpec::default());

    let mut spec = parse("python=p");
    spec.set("ssh", Some("host")).unwrap();
    assert_eq!(spec.kind(), &Kind::Ssh("host".into()));
    spec.set("ssh", Some("other")).unwrap();
    assert_eq!(spec.kind(), &Kind::Ssh("other".into()));
    spec.set("env:X", Some("1=2")).unwrap();
    spec.set("flag", None).unwrap();
    assert_eq!(spec.to_string(), "python=p//ssh=other//env:X=1=2//flag");
    assert_eq!(parse(&spec.to_string()), spec);
}

#[test]
fn equal_specs_hash_alike() {
    use std::collections::HashSet;
    let set: HashSet<XSpec> = ["popen//id=a", "popen//id=a", "popen//id=b"]
        .into_iter()
        .map(parse)
        .collect();
    assert_eq!(set.len(), 2);
    assert_ne!(parse("id=a//python=p"), parse("python=p//id=a"));
    assert_eq!("popen".parse::<XSpec>(), Ok(XSpec::default()));
    assert_eq!(XSpec::try_from("popen"), Ok(XSpec::default()));
}

#[test]
fn fuzz_parse_survives_nasty_input() {
    for data in [
        &b""[..],
        b"/",
        b"//",
        b"///",
        b"=",
        b"==",
        b"popen///",
        b"a///b",
        b"ssh=//",
        b"\xff\xfe//popen",
        b"env:\xc3=\xff",
        b"socket=:",
        b"socket=[::1]:99999999999999999999",
        b"nice=-2147483649",
        b"nice=-2147483648",
        b"\0//\0=\0",
        "\u{202e}popen//id=\u{1f980}".as_bytes(),
    ] {
        fuzz_parse(data);
    }
}

#[cfg(feature = "serde")]
#[test]
fn serde_uses_the_spec_string() {
    let spec = parse("ssh=h//id=x");
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(json, "\"ssh=h//id=x\"");
    assert_eq!(serde_json::from_str::<XSpec>(&json).unwrap(), spec);
    assert!(serde_json::from_str::<XSpec>("\"nice=x\"").is_err());
}

#[test]
fn ids_are_not_empty_and_hold_no_control_characters() {
    for (text, part) in [
        ("popen//id=", "id="),
        ("popen//id", "id"),
        ("popen//id=a\nb", "id=a\nb"),
        ("popen//via=", "via="),
        ("socket=h:1//installvia=\t", "installvia=\t"),
    ] {
        match XSpec::parse(text) {
            Err(ParseError::BadId { part: found, .. }) => assert_eq!(found, part, "{text:?}"),
            other => panic!("{text:?}: expected BadId, got {other:?}"),
        }
    }
    let err = XSpec::parse("popen//id=a\nb").unwrap_err().to_string();
    assert!(err.contains("newline"), "{err}");
    let mut spec = parse("popen//id=a");
    assert!(spec.set_id("").is_err());
    assert!(spec.set_id("x\ny").is_err());
    assert!(spec.set_id("a//b").is_err());
    assert_eq!(spec.id(), Some("a"));
    assert!(XSpec::parse("popen//id=gw 0:é").is_ok());
}
