//! `execnet::rsync` against real workers: what arrives, what is not sent
//! again, deletes, filters, symlinks, several targets, failures.

mod support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use execnet::blocking::{Gateway, RSync};
use execnet::rsync::{Event, RsyncError, TargetOptions};

use support::{set_mtime, tree, TempDir};

/// Sends recorded by the report hook: (gateway id, relative path).
type Sent = Arc<Mutex<Vec<(String, String)>>>;

fn recording(source: &Path) -> (RSync, Sent) {
    let sent: Sent = Arc::default();
    let log = sent.clone();
    let rsync = RSync::new(source).on_send_file(move |gw, path| {
        log.lock()
            .unwrap()
            .push((gw.id().to_string(), path.display().to_string()));
        Ok(())
    });
    (rsync, sent)
}

fn sync(gw: &Gateway, source: &Path, dest: &Path, delete: bool) -> Vec<String> {
    let (mut rsync, sent) = recording(source);
    rsync
        .add_target(gw, dest, TargetOptions::new().delete(delete))
        .unwrap();
    rsync.send().unwrap();
    let sent = sent.lock().unwrap();
    sent.iter().map(|(_, p)| p.clone()).collect()
}

fn popen() -> Gateway {
    Gateway::open("popen").unwrap()
}

#[test]
fn files_nested_and_empty_dirs_arrive_with_contents_modes_and_times() {
    let tmp = TempDir::new("basic");
    let src = tmp.mkdir("src");
    fs::create_dir_all(src.join("a/b/c")).unwrap();
    fs::create_dir_all(src.join("empty/deeper")).unwrap();
    fs::write(src.join("top.txt"), "top").unwrap();
    fs::write(src.join("a/one.bin"), [0u8, 1, 2, 255]).unwrap();
    fs::write(src.join("a/b/c/deep.txt"), "x".repeat(3 << 20)).unwrap();
    fs::write(src.join("a/empty-file"), "").unwrap();
    fs::write(src.join("run.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(src.join("run.sh"), fs::Permissions::from_mode(0o751)).unwrap();
    fs::set_permissions(src.join("a/b"), fs::Permissions::from_mode(0o750)).unwrap();
    let dest = tmp.path().join("dest");

    let gw = popen();
    let mut sent = sync(&gw, &src, &dest, false);
    sent.sort();
    assert_eq!(
        sent,
        [
            "a/b/c/deep.txt",
            "a/empty-file",
            "a/one.bin",
            "run.sh",
            "top.txt"
        ]
    );
    assert_eq!(tree(&dest), tree(&src));
    assert_eq!(
        fs::metadata(dest.join("run.sh")).unwrap().mode() & 0o7777,
        0o751
    );
    assert_eq!(
        fs::metadata(dest.join("a/b")).unwrap().mode() & 0o7777,
        0o750
    );
    gw.exit().unwrap();
}

#[test]
fn unchanged_files_are_not_sent_again_and_changed_ones_are() {
    let tmp = TempDir::new("resend");
    let src = tmp.mkdir("src");
    for i in 0..20 {
        fs::write(src.join(format!("f{i:02}")), format!("file {i:02}")).unwrap();
    }
    let dest = tmp.path().join("dest");
    let gw = popen();
    assert_eq!(sync(&gw, &src, &dest, false).len(), 20);

    // Nothing changed: nothing is sent.
    let (mut rsync, sent) = recording(&src);
    rsync.add_target(&gw, &dest, TargetOptions::new()).unwrap();
    let report = rsync.send().unwrap();
    assert!(sent.lock().unwrap().is_empty());
    assert_eq!(report.targets[0].files_sent, 0);
    assert_eq!(report.targets[0].files_same, 0);

    // Same size, new contents (and time): sent. Longer: sent. Touched only:
    // compared by checksum, not sent, but its time is brought over.
    fs::write(src.join("f03"), "FILE 03").unwrap();
    set_mtime(&src.join("f03"), 1_000_000_007, 0);
    fs::write(src.join("f07"), "file 07, longer now").unwrap();
    set_mtime(&src.join("f11"), 1_500_000_000, 123_456_789);
    let (mut rsync, sent) = recording(&src);
    rsync.add_target(&gw, &dest, TargetOptions::new()).unwrap();
    let report = rsync.send().unwrap();
    let sent: Vec<String> = sent.lock().unwrap().iter().map(|s| s.1.clone()).collect();
    assert_eq!(sent, ["f03", "f07"]);
    assert_eq!(report.targets[0].files_sent, 2);
    assert_eq!(report.targets[0].files_same, 1);
    assert_eq!(tree(&dest), tree(&src));

    // A destination file changed behind our back (same size, older time):
    // the checksum differs, so it is sent.
    fs::write(dest.join("f05"), "FILE 05").unwrap();
    set_mtime(&dest.join("f05"), 1_000, 0);
    assert_eq!(sync(&gw, &src, &dest, false), ["f05"]);
    assert_eq!(fs::read_to_string(dest.join("f05")).unwrap(), "file 05");
    gw.exit().unwrap();
}

#[test]
fn delete_removes_only_when_asked() {
    let tmp = TempDir::new("delete");
    let src = tmp.mkdir("src");
    fs::create_dir_all(src.join("keep")).unwrap();
    fs::write(src.join("keep/k"), "k").unwrap();
    fs::write(src.join("ignored.log"), "log").unwrap();
    let dest = tmp.mkdir("dest");
    fs::create_dir_all(dest.join("old/deep/er")).unwrap();
    fs::write(dest.join("old/deep/er/f"), "f").unwrap();
    fs::set_permissions(dest.join("old/deep"), fs::Permissions::from_mode(0o500)).unwrap();
    fs::create_dir_all(dest.join("keep")).unwrap();
    fs::write(dest.join("keep/stale"), "stale").unwrap();
    symlink("nowhere", dest.join("old-link")).unwrap();

    let gw = popen();
    sync(&gw, &src, &dest, false);
    assert!(dest.join("old/deep/er/f").exists());
    assert!(dest.join("keep/stale").exists());
    assert!(dest.join("old-link").symlink_metadata().is_ok());

    // With delete, what the source lacks goes, and so does what the filter
    // excludes (as in execnet).
    let mut rsync = RSync::new(&src).filter(|p| Ok(p.extension() != Some(OsStr::new("log"))));
    fs::write(dest.join("ignored.log"), "remote copy").unwrap();
    rsync
        .add_target(&gw, &dest, TargetOptions::new().delete(true))
        .unwrap();
    let report = rsync.send().unwrap();
    assert_eq!(report.targets[0].deleted, 4, "{report:?}");
    let mut expected = tree(&src);
    expected.remove(Path::new("ignored.log"));
    assert_eq!(tree(&dest), expected);
    gw.exit().unwrap();
}

#[test]
fn filter_sees_joined_paths_and_excluded_dirs_are_not_entered() {
    let tmp = TempDir::new("filter");
    let src = tmp.mkdir("src");
    fs::create_dir_all(src.join(".git/objects")).unwrap();
    fs::write(src.join(".git/objects/x"), "x").unwrap();
    fs::create_dir_all(src.join("pkg/__pycache__")).unwrap();
    fs::write(src.join("pkg/__pycache__/m.pyc"), "pyc").unwrap();
    fs::write(src.join("pkg/m.py"), "py").unwrap();
    fs::write(src.join("pkg/m.py~"), "backup").unwrap();
    let seen: Arc<Mutex<Vec<PathBuf>>> = Arc::default();
    let log = seen.clone();
    // Given with a trailing slash: the filter sees `src/name`, as execnet's does.
    let mut source = src.clone().into_os_string();
    source.push("/");
    let mut rsync = RSync::new(PathBuf::from(source)).filter(move |p| {
        log.lock().unwrap().push(p.to_path_buf());
        let name = p.file_name().unwrap().to_string_lossy();
        Ok(!(name == ".git" || name == "__pycache__" || name.ends_with('~')))
    });
    let dest = tmp.path().join("dest");
    let gw = popen();
    rsync.add_target(&gw, &dest, TargetOptions::new()).unwrap();
    rsync.send().unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let expect: Vec<PathBuf> = [".git", "pkg", "pkg/__pycache__", "pkg/m.py", "pkg/m.py~"]
        .iter()
        .map(|p| src.join(p))
        .collect();
    assert_eq!(seen, expect);
    let names: Vec<_> = tree(&dest).into_keys().collect();
    assert_eq!(
        names,
        [Path::new(""), Path::new("pkg"), Path::new("pkg/m.py")]
    );
    gw.exit().unwrap();
}

#[test]
fn symlinks_relative_absolute_inside_outside_and_dangling() {
    let tmp = TempDir::new("links");
    let src = tmp.mkdir("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("sub/file"), "f").unwrap();
    symlink("sub/file", src.join("rel")).unwrap();
    symlink(src.join("sub/file"), src.join("abs-inside")).unwrap();
    symlink(src.join("sub"), src.join("abs-dir-inside")).unwrap();
    symlink(tmp.path(), src.join("sub/abs-outside")).unwrap();
    symlink("../../elsewhere", src.join("sub/rel-outside")).unwrap();
    symlink("missing", src.join("dangling")).unwrap();
    symlink(&src, src.join("root")).unwrap();
    let dest = tmp.path().join("dest");
    let gw = popen();
    sync(&gw, &src, &dest, false);
    let link = |p: &str| fs::read_link(dest.join(p)).unwrap();
    assert_eq!(link("rel"), Path::new("sub/file"));
    assert_eq!(link("abs-inside"), dest.join("sub/file"));
    assert_eq!(link("abs-dir-inside"), dest.join("sub"));
    assert_eq!(link("sub/abs-outside"), tmp.path());
    assert_eq!(link("sub/rel-outside"), Path::new("../../elsewhere"));
    assert_eq!(link("dangling"), Path::new("missing"));
    // A link to the source root itself stays as it is (execnet does so too).
    assert_eq!(link("root"), src);
    assert_eq!(fs::read_to_string(dest.join("abs-inside")).unwrap(), "f");

    // A changed link is replaced; a directory where the source now has a
    // link is replaced by the link.
    fs::remove_file(src.join("rel")).unwrap();
    symlink("sub", src.join("rel")).unwrap();
    fs::remove_file(src.join("dangling")).unwrap();
    symlink("sub", src.join("dangling")).unwrap();
    fs::remove_file(dest.join("dangling")).unwrap();
    fs::create_dir_all(dest.join("dangling/x")).unwrap();
    let (mut rsync, _) = recording(&src);
    rsync.add_target(&gw, &dest, TargetOptions::new()).unwrap();
    let report = rsync.send().unwrap();
    assert_eq!(report.targets[0].links_made, 2);
    assert_eq!(link("rel"), Path::new("sub"));
    assert_eq!(link("dangling"), Path::new("sub"));
    gw.exit().unwrap();
}

#[test]
fn a_different_kind_at_the_destination_is_replaced() {
    let tmp = TempDir::new("kinds");
    let src = tmp.mkdir("src");
    fs::write(src.join("was-dir"), "now a file").unwrap();
    fs::create_dir_all(src.join("was-file/inner")).unwrap();
    fs::write(src.join("was-link"), "now a file").unwrap();
    let dest = tmp.mkdir("dest");
    fs::create_dir_all(dest.join("was-dir/deep")).unwrap();
    fs::write(dest.join("was-dir/deep/f"), "f").unwrap();
    fs::write(dest.join("was-file"), "file").unwrap();
    // Writing through this link would change the outside file.
    let outside = tmp.path().join("outside");
    fs::write(&outside, "untouched").unwrap();
    symlink(&outside, dest.join("was-link")).unwrap();
    let gw = popen();
    sync(&gw, &src, &dest, false);
    assert_eq!(tree(&dest), tree(&src));
    assert_eq!(fs::read_to_string(&outside).unwrap(), "untouched");
    gw.exit().unwrap();
}

#[test]
fn read_only_files_and_dirs_sync_and_resync() {
    let tmp = TempDir::new("perms");
    let src = tmp.mkdir("src");
    fs::create_dir_all(src.join("ro/inner")).unwrap();
    fs::write(src.join("ro/inner/f"), "v1").unwrap();
    fs::write(src.join("ro-file"), "v1").unwrap();
    fs::set_permissions(src.join("ro-file"), fs::Permissions::from_mode(0o444)).unwrap();
    fs::set_permissions(src.join("ro/inner"), fs::Permissions::from_mode(0o500)).unwrap();
    fs::set_permissions(src.join("ro"), fs::Permissions::from_mode(0o500)).unwrap();
    let dest = tmp.path().join("dest");
    let gw = popen();
    sync(&gw, &src, &dest, false);
    let mode = |p: &str| fs::metadata(dest.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("ro-file"), 0o444);
    assert_eq!(mode("ro"), 0o700, "directories stay writable for us");
    assert_eq!(mode("ro/inner"), 0o700);

    // New contents for a read-only file, and a mode-only change.
    fs::set_permissions(src.join("ro-file"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(src.join("ro-file"), "version 2").unwrap();
    fs::set_permissions(src.join("ro-file"), fs::Permissions::from_mode(0o440)).unwrap();
    fs::set_permissions(src.join("ro/inner"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(src.join("ro/inner/f"), fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(sync(&gw, &src, &dest, false), ["ro-file"]);
    assert_eq!(
        fs::read_to_string(dest.join("ro-file")).unwrap(),
        "version 2"
    );
    assert_eq!(mode("ro-file"), 0o440);
    assert_eq!(mode("ro/inner"), 0o755);
    assert_eq!(mode("ro/inner/f"), 0o600);
    gw.exit().unwrap();
}

#[test]
fn file_names_that_are_not_utf8_arrive_unchanged() {
    let tmp = TempDir::new("names");
    let src = tmp.mkdir("src");
    let name = OsStr::from_bytes(b"caf\xe9 \xff.txt");
    fs::write(src.join(name), "latin-1").unwrap();
    fs::create_dir(src.join("日本")).unwrap();
    fs::write(src.join("日本/ß"), "utf-8").unwrap();
    let dest = tmp.path().join("dest");
    let gw = popen();
    sync(&gw, &src, &dest, false);
    assert_eq!(fs::read_to_string(dest.join(name)).unwrap(), "latin-1");
    assert_eq!(tree(&dest), tree(&src));
    gw.exit().unwrap();
}

#[test]
fn several_targets_in_one_send_each_finish_once() {
    let tmp = TempDir::new("multi");
    let src = tmp.mkdir("src");
    fs::create_dir(src.join("d")).unwrap();
    for i in 0..50 {
        fs::write(src.join(format!("d/{i}")), vec![i as u8; 1000 * i]).unwrap();
    }
    let gw1 = Gateway::open("popen//id=one").unwrap();
    let gw2 = Gateway::open("popen//id=two").unwrap();
    let finished: Arc<Mutex<Vec<&str>>> = Arc::default();
    let filtered = Arc::new(Mutex::new(0usize));
    let count = filtered.clone();
    let (rsync, sent) = recording(&src);
    let mut rsync = rsync.filter(move |_| {
        *count.lock().unwrap() += 1;
        Ok(true)
    });
    for (gw, dest, name) in [
        (&gw1, "one", "gw1 one"),
        (&gw2, "two", "gw2 two"),
        (&gw1, "three", "gw1 three"),
    ] {
        let log = finished.clone();
        let options = TargetOptions::new().on_finished(move || {
            log.lock().unwrap().push(name);
            Ok(())
        });
        rsync
            .add_target(gw, tmp.path().join(dest), options)
            .unwrap();
    }
    assert_eq!(rsync.target_count(), 3);
    let report = rsync.send().unwrap();
    assert_eq!(rsync.target_count(), 0);
    // The source is read once, however many targets.
    assert_eq!(*filtered.lock().unwrap(), 51);
    let mut finished = finished.lock().unwrap().clone();
    finished.sort();
    assert_eq!(finished, ["gw1 one", "gw1 three", "gw2 two"]);
    assert_eq!(sent.lock().unwrap().len(), 150);
    let per_gw = |id: &str| sent.lock().unwrap().iter().filter(|s| s.0 == id).count();
    assert_eq!((per_gw("one"), per_gw("two")), (100, 50));
    assert_eq!(report.targets.len(), 3);
    for (target, dest) in report.targets.iter().zip(["one", "two", "three"]) {
        assert_eq!(target.dest_dir, tmp.path().join(dest));
        assert_eq!(target.files_sent, 50);
        assert_eq!(tree(&tmp.path().join(dest)), tree(&src));
    }
    gw1.exit().unwrap();
    gw2.exit().unwrap();
}

#[test]
fn callback_lists_then_acks_each_file_with_its_size() {
    let tmp = TempDir::new("callback");
    let src = tmp.mkdir("src");
    fs::write(src.join("existent"), "a".repeat(100)).unwrap();
    fs::write(src.join("existant2"), "a".repeat(10)).unwrap();
    fs::write(src.join("big"), vec![7u8; (1 << 20) * 2 + 5]).unwrap();
    let events: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let log = events.clone();
    let mut rsync = RSync::new(&src).callback(move |event| {
        let entry = match event {
            Event::List { bytes, .. } => ("list".to_string(), bytes),
            Event::Ack { bytes, path, .. } => (format!("ack {}", path.display()), bytes),
            Event::Sent { bytes, path, .. } => (format!("sent {}", path.display()), bytes),
            _ => return Ok(()),
        };
        log.lock().unwrap().push(entry);
        Ok(())
    });
    let gw = popen();
    rsync
        .add_target(&gw, tmp.path().join("dest"), TargetOptions::new())
        .unwrap();
    rsync.send().unwrap();
    let events = events.lock().unwrap().clone();
    let of = |prefix: &str| -> Vec<(String, u64)> {
        events
            .iter()
            .filter(|e| e.0.starts_with(prefix))
            .cloned()
            .collect()
    };
    let big = (1u64 << 20) * 2 + 5;
    assert_eq!(of("list"), [("list".to_string(), 110 + big)]);
    let mut acks = of("ack");
    acks.sort();
    assert_eq!(
        acks,
        [
            ("ack big".to_string(), big),
            ("ack existant2".to_string(), 10),
            ("ack existent".to_string(), 100)
        ]
    );
    let list_at = events.iter().position(|e| e.0 == "list").unwrap();
    let first_ack = events.iter().position(|e| e.0.starts_with("ack")).unwrap();
    assert!(list_at < first_ack, "{events:?}");
    // The big file went in 1 MiB chunks.
    let chunks: Vec<u64> = of("sent big").into_iter().map(|e| e.1).collect();
    assert_eq!(chunks, [1 << 20, 1 << 20, 5]);
    gw.exit().unwrap();
}

#[test]
fn no_targets_and_send_twice_are_errors() {
    let tmp = TempDir::new("notargets");
    let src = tmp.mkdir("src");
    fs::write(src.join("hello"), "").unwrap();
    let mut rsync = RSync::new(&src);
    let err = rsync.send().unwrap_err();
    assert!(matches!(err, RsyncError::NoTargets), "{err:?}");
    assert!(err.to_string().contains("no targets"), "{err}");
    let gw = popen();
    rsync
        .add_target(&gw, tmp.path().join("d1"), TargetOptions::new())
        .unwrap();
    rsync.send().unwrap();
    assert!(tmp.path().join("d1/hello").exists());
    assert!(matches!(rsync.send(), Err(RsyncError::NoTargets)));
    // New targets make it usable again.
    rsync
        .add_target(&gw, tmp.path().join("d2"), TargetOptions::new())
        .unwrap();
    rsync.send().unwrap();
    assert!(tmp.path().join("d2/hello").exists());
    gw.exit().unwrap();
}

#[test]
fn a_missing_source_is_an_error_and_keeps_the_targets() {
    let tmp = TempDir::new("nosource");
    let src = tmp.path().join("src");
    let dest = tmp.mkdir("dest");
    fs::write(dest.join("precious"), "keep me").unwrap();
    let gw = popen();
    let mut rsync = RSync::new(&src);
    rsync
        .add_target(&gw, &dest, TargetOptions::new().delete(true))
        .unwrap();
    let err = rsync.send().unwrap_err();
    match &err {
        RsyncError::Source { path, error } => {
            assert_eq!(path, &src);
            assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains(&src.display().to_string()),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(dest.join("precious")).unwrap(),
        "keep me"
    );
    // A file is not a source directory either.
    fs::write(&src, "a file").unwrap();
    assert!(matches!(rsync.send(), Err(RsyncError::Source { .. })));
    fs::remove_file(&src).unwrap();
    // Fixed, the same targets are used.
    fs::create_dir(&src).unwrap();
    fs::write(src.join("new"), "n").unwrap();
    assert_eq!(rsync.target_count(), 1);
    rsync.send().unwrap();
    assert!(dest.join("new").exists());
    assert!(!dest.join("precious").exists());
    gw.exit().unwrap();
}

#[test]
fn a_file_vanishing_during_the_send_is_skipped() {
    let tmp = TempDir::new("vanish");
    let src = tmp.mkdir("src");
    fs::write(src.join("ex"), "a".repeat(100)).unwrap();
    fs::write(src.join("ex2"), "a".repeat(100)).unwrap();
    let doomed = src.join("ex2");
    let mut rsync = RSync::new(&src).filter(move |p| {
        if p == doomed {
            fs::remove_file(p).unwrap();
        }
        Ok(true)
    });
    let dest = tmp.path().join("dest");
    let gw = popen();
    rsync.add_target(&gw, &dest, TargetOptions::new()).unwrap();
    rsync.send().unwrap();
    let names: Vec<_> = fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["ex"]);
    gw.exit().unwrap();
}

#[test]
fn the_destination_is_relative_to_the_workers_directory() {
    let tmp = TempDir::new("chdir");
    let src = tmp.mkdir("src");
    fs::write(src.join("f"), "f").unwrap();
    let work = tmp.path().join("work");
    let gw = Gateway::open(&format!(
        "popen//chdir={}//execmodel=main_thread_only",
        work.display()
    ))
    .unwrap();
    let done = Arc::new(Mutex::new(0));
    let count = done.clone();
    let mut rsync = RSync::new(&src);
    rsync
        .add_target(
            &gw,
            "copy",
            TargetOptions::new().on_finished(move || {
                *count.lock().unwrap() += 1;
                Ok(())
            }),
        )
        .unwrap();
    rsync.send().unwrap();
    assert_eq!(*done.lock().unwrap(), 1);
    assert_eq!(fs::read_to_string(work.join("copy/f")).unwrap(), "f");
    gw.exit().unwrap();
}

#[test]
fn a_target_that_cannot_write_fails_with_the_far_sides_reason() {
    let tmp = TempDir::new("unwritable");
    let src = tmp.mkdir("src");
    fs::write(src.join("f"), "f").unwrap();
    let blocker = tmp.path().join("a-file");
    fs::write(&blocker, "").unwrap();
    let gw = popen();
    let mut rsync = RSync::new(&src);
    rsync
        .add_target(&gw, blocker.join("sub"), TargetOptions::new())
        .unwrap();
    let good = tmp.path().join("good");
    rsync.add_target(&gw, &good, TargetOptions::new()).unwrap();
    let err = rsync.send().unwrap_err();
    let RsyncError::Incomplete(incomplete) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(incomplete.failed.len(), 1);
    let failed = &incomplete.failed[0];
    assert_eq!(failed.gateway(), gw.id());
    assert_eq!(failed.dest_dir(), blocker.join("sub"));
    let remote = failed
        .error()
        .and_then(|e| e.as_remote())
        .expect("a remote error");
    assert!(
        remote.formatted().contains("NotADirectoryError"),
        "{remote}"
    );
    assert!(err.to_string().contains("NotADirectoryError"), "{err}");
    assert!(!failed.is_connection_lost());
    // The other target completed.
    assert_eq!(incomplete.report.targets.len(), 1);
    assert_eq!(fs::read_to_string(good.join("f")).unwrap(), "f");
    // And the gateway is fine.
    let ch = gw.remote_exec("channel.send(1)").unwrap();
    assert_eq!(ch.receive::<i32>().unwrap(), 1);
    gw.exit().unwrap();
}

#[test]
fn a_gateway_dying_mid_send_fails_that_target_only() {
    let tmp = TempDir::new("dying");
    let src = tmp.mkdir("src");
    fs::write(src.join("big"), vec![1u8; 32 << 20]).unwrap();
    fs::write(src.join("small"), "s").unwrap();
    let doomed = Gateway::open("popen//id=doomed").unwrap();
    let healthy = Gateway::open("popen//id=healthy").unwrap();
    let pid = doomed.pid().unwrap();
    let doomed_id = doomed.id().to_string();
    let killed = Arc::new(Mutex::new(false));
    let flag = killed.clone();
    let mut rsync = RSync::new(&src).callback(move |event| {
        if let Event::Sent { channel, .. } = event {
            let mut killed = flag.lock().unwrap();
            if channel.gateway().id() == doomed_id && !*killed {
                *killed = true;
                let status = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(status.success());
            }
        }
        Ok(())
    });
    rsync
        .add_target(&doomed, tmp.path().join("d1"), TargetOptions::new())
        .unwrap();
    rsync
        .add_target(&healthy, tmp.path().join("d2"), TargetOptions::new())
        .unwrap();
    let err = rsync.send().unwrap_err();
    assert!(*killed.lock().unwrap());
    let RsyncError::Incomplete(incomplete) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(incomplete.failed.len(), 1, "{err}");
    let failed = &incomplete.failed[0];
    assert_eq!(failed.gateway(), doomed.id());
    assert!(failed.is_connection_lost(), "{failed}");
    let text = err.to_string();
    assert!(
        text.contains(doomed.id()) && text.contains("connection lost"),
        "{text}"
    );
    assert_eq!(incomplete.report.targets.len(), 1);
    assert_eq!(incomplete.report.targets[0].gateway, healthy.id());
    assert_eq!(tree(&tmp.path().join("d2")), tree(&src));
    // What the dead worker left half written, the next sync repairs.
    let again = Gateway::open("popen//id=again").unwrap();
    sync(&again, &src, &tmp.path().join("d1"), false);
    assert_eq!(tree(&tmp.path().join("d1")), tree(&src));
    again.exit().unwrap();

    // A dead gateway cannot take a target at all.
    let mut again = RSync::new(&src);
    let err = again
        .add_target(&doomed, tmp.path().join("d3"), TargetOptions::new())
        .unwrap_err();
    assert!(matches!(err, RsyncError::Target(_)), "{err:?}");
    assert!(err.to_string().contains(doomed.id()), "{err}");
    // execnet's send(raises=False) only forgives having no targets.
    assert!(matches!(again.send(), Err(RsyncError::NoTargets)));
    healthy.exit().unwrap();
    doomed.exit().unwrap();
}

#[test]
fn an_unreadable_file_is_reported_and_the_rest_is_synced() {
    if is_root() {
        eprintln!("skipping: root can read a file of mode 000");
        return;
    }
    let tmp = TempDir::new("unreadable");
    let src = tmp.mkdir("src");
    fs::write(src.join("secret"), "s").unwrap();
    fs::write(src.join("public"), "p").unwrap();
    fs::set_permissions(src.join("secret"), fs::Permissions::from_mode(0o000)).unwrap();
    let dest = tmp.path().join("dest");
    let gw = popen();
    let mut rsync = RSync::new(&src);
    rsync.add_target(&gw, &dest, TargetOptions::new()).unwrap();
    let err = rsync.send().unwrap_err();
    let RsyncError::Incomplete(incomplete) = &err else {
        panic!("{err:?}")
    };
    assert!(incomplete.failed.is_empty());
    assert_eq!(incomplete.unreadable.len(), 1);
    assert_eq!(incomplete.unreadable[0].0, src.join("secret"));
    assert_eq!(
        incomplete.unreadable[0].1.kind(),
        std::io::ErrorKind::PermissionDenied
    );
    assert!(err.to_string().contains("cannot read"), "{err}");
    assert_eq!(fs::read_to_string(dest.join("public")).unwrap(), "p");
    assert!(!dest.join("secret").exists());
    gw.exit().unwrap();
}

#[test]
fn an_unreadable_directory_is_reported_skipped_and_kept_at_the_destination() {
    if is_root() {
        eprintln!("skipping: root can read a directory of mode 000");
        return;
    }
    let tmp = TempDir::new("unreadable-dir");
    let src = tmp.mkdir("src");
    fs::create_dir_all(src.join("closed")).unwrap();
    fs::write(src.join("closed/inner"), "new").unwrap();
    fs::write(src.join("open"), "o").unwrap();
    let dest = tmp.mkdir("dest");
    fs::create_dir_all(dest.join("closed")).unwrap();
    fs::write(dest.join("closed/inner"), "old").unwrap();
    fs::set_permissions(src.join("closed"), fs::Permissions::from_mode(0o000)).unwrap();
    let gw = popen();
    let mut rsync = RSync::new(&src);
    rsync
        .add_target(&gw, &dest, TargetOptions::new().delete(true))
        .unwrap();
    let err = rsync.send().unwrap_err();
    fs::set_permissions(src.join("closed"), fs::Permissions::from_mode(0o755)).unwrap();
    let RsyncError::Incomplete(incomplete) = &err else {
        panic!("{err:?}")
    };
    assert!(incomplete.failed.is_empty(), "{err}");
    assert_eq!(incomplete.unreadable.len(), 1, "{err}");
    assert_eq!(incomplete.unreadable[0].0, src.join("closed"));
    assert_eq!(fs::read_to_string(dest.join("open")).unwrap(), "o");
    // Even with delete: what could not be read is left alone.
    assert_eq!(
        fs::read_to_string(dest.join("closed/inner")).unwrap(),
        "old"
    );
    gw.exit().unwrap();
}

fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[test]
fn a_target_dead_from_the_start_does_not_hold_up_a_big_walk() {
    let tmp = TempDir::new("dead-start");
    let src = tmp.mkdir("src");
    // Enough entries for several batches (64 KiB each) of the streamed
    // walk: about 260 bytes per file.
    let long = "n".repeat(235);
    for d in 0..6 {
        let dir = src.join(format!("dir-{d}"));
        fs::create_dir(&dir).unwrap();
        for f in 0..250 {
            fs::File::create(dir.join(format!("{long}-{f:04}"))).unwrap();
        }
    }
    let doomed = Gateway::open("popen//id=dead").unwrap();
    let healthy = Gateway::open("popen//id=alive").unwrap();
    let mut rsync = RSync::new(&src);
    rsync
        .add_target(&doomed, tmp.path().join("d1"), TargetOptions::new())
        .unwrap();
    rsync
        .add_target(&healthy, tmp.path().join("d2"), TargetOptions::new())
        .unwrap();
    doomed.kill().unwrap();
    let err = rsync.send().unwrap_err();
    let RsyncError::Incomplete(incomplete) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(incomplete.failed.len(), 1, "{err}");
    assert_eq!(incomplete.failed[0].gateway(), "dead");
    assert!(incomplete.failed[0].is_connection_lost(), "{err}");
    assert_eq!(incomplete.report.files, 1_500);
    assert_eq!(incomplete.report.targets[0].files_sent, 1_500);
    assert_eq!(tree(&tmp.path().join("d2")), tree(&src));
    healthy.exit().unwrap();
}

#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused {}", self.0)
    }
}

impl std::error::Error for Refused {}

#[test]
fn a_failing_hook_stops_the_send_and_comes_back_as_it_is() {
    let tmp = TempDir::new("hookerr");
    let src = tmp.mkdir("src");
    for i in 0..10 {
        fs::write(src.join(format!("f{i}")), "x".repeat(i * 100)).unwrap();
    }
    let gw = popen();
    let mut rsync = RSync::new(&src).on_send_file(|_, path| {
        if path == Path::new("f3") {
            return Err(Box::new(Refused(path.display().to_string())));
        }
        Ok(())
    });
    rsync
        .add_target(&gw, tmp.path().join("d"), TargetOptions::new())
        .unwrap();
    let err = rsync.send().unwrap_err();
    let RsyncError::Hook(hook) = err else {
        panic!("{err:?}")
    };
    assert_eq!(hook.downcast_ref::<Refused>().unwrap().0, "f3");
    assert!(!tmp.path().join("d/f3").exists());
    let temporary = || -> Vec<String> {
        fs::read_dir(tmp.path().join("d"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".execnet-rsync"))
            .collect()
    };

    // A failing filter stops the send too, and uses up its targets.
    let mut rsync =
        RSync::new(&src).filter(|p| Err(format!("cannot decide on {}", p.display()).into()));
    rsync
        .add_target(&gw, tmp.path().join("e"), TargetOptions::new())
        .unwrap();
    let err = rsync.send().unwrap_err();
    assert!(err.to_string().contains("cannot decide on"), "{err}");
    assert_eq!(rsync.target_count(), 0);

    // The receiving ends of the stopped sends end too.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while gw.remote_status().unwrap().numexecuting > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the receiving end lingers"
        );
        std::thread::yield_now();
    }
    gw.exit().unwrap();

    // A hook failing half way through big files: a file that existed keeps
    // its old contents, a new one is not left half written, and no
    // temporary file stays.
    fs::write(src.join("big"), vec![5u8; 3 << 20]).unwrap();
    let gw = popen();
    sync(&gw, &src, &tmp.path().join("d"), false);
    fs::write(src.join("big"), vec![6u8; 3 << 20]).unwrap();
    fs::write(src.join("big-new"), vec![7u8; 3 << 20]).unwrap();
    for stop_at in ["big", "big-new"] {
        let mut rsync = RSync::new(&src).callback(move |event| match event {
            Event::Sent { path, .. } if path == Path::new(stop_at) => Err("enough".into()),
            _ => Ok(()),
        });
        rsync
            .add_target(&gw, tmp.path().join("d"), TargetOptions::new())
            .unwrap();
        let err = rsync.send().unwrap_err();
        assert!(err.to_string().contains("enough"), "{err}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while gw.remote_status().unwrap().numexecuting > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the receiving end lingers"
            );
            std::thread::yield_now();
        }
        assert_eq!(temporary(), Vec::<String>::new());
        assert!(
            !tmp.path().join("d/big-new").exists(),
            "stopped at {stop_at}"
        );
        // Stopped in `big`: the old contents; stopped later: the new ones.
        let expect = if stop_at == "big" { 5 } else { 6 };
        let big = fs::read(tmp.path().join("d/big")).unwrap();
        assert_eq!(big.len(), 3 << 20);
        assert!(big.iter().all(|&b| b == expect), "stopped at {stop_at}");
    }
    gw.exit().unwrap();
}

#[test]
fn the_async_send_future_can_move_between_threads() {
    fn assert_send<T: Send>(_: &T) {}
    let tmp = TempDir::new("async");
    let src = tmp.mkdir("src");
    fs::write(src.join("f"), "async").unwrap();
    let dest = tmp.path().join("dest");
    futures_lite::future::block_on(async {
        let gw = execnet::Gateway::open("popen").await.unwrap();
        let mut rsync = execnet::rsync::RSync::new(&src);
        rsync
            .add_target(&gw, &dest, TargetOptions::new())
            .await
            .unwrap();
        let send = rsync.send();
        assert_send(&send);
        let report = send.await.unwrap();
        assert_eq!(report.files, 1);
        gw.exit().await.unwrap();
    });
    assert_eq!(fs::read_to_string(dest.join("f")).unwrap(), "async");
}

#[test]
fn over_ssh_through_a_real_sshd() {
    let Some(sshd) = support::sshd::Sshd::start("rsync") else {
        return;
    };
    let tmp = TempDir::new("ssh");
    let src = tmp.mkdir("src");
    fs::create_dir_all(src.join("a/b")).unwrap();
    fs::write(src.join("a/b/f"), "over ssh").unwrap();
    fs::write(src.join("big"), vec![3u8; 5 << 20]).unwrap();
    symlink(src.join("a/b/f"), src.join("link")).unwrap();
    let gw = Gateway::open(&sshd.spec("")).unwrap();
    let dest = tmp.path().join("dest");
    assert_eq!(sync(&gw, &src, &dest, true).len(), 2);
    assert_eq!(tree(&dest), tree(&src));
    assert_eq!(
        fs::read_link(dest.join("link")).unwrap(),
        dest.join("a/b/f")
    );
    assert!(sync(&gw, &src, &dest, true).is_empty());
    gw.exit().unwrap();
}
