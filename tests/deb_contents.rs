//! The amd64 Debian package: built with tests/packaging/build-deb.sh (cargo-deb), then checked with
//! `dpkg-deb`: the file list, the conffile marking of /etc/gsmgate/gsmgate.toml, the maintainer
//! scripts (user creation, enable/start, purge of the data), and that the packaged config passes
//! the packaged binary's `check-config`.
//!
//! One test, because building the package needs a release build (minutes on 2 cores; CI builds
//! the package before the test run, so here the build is a no-op). Without cargo-deb or dpkg-deb
//! it prints a SKIPPED line and passes: CI installs cargo-deb, so the check always runs there.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn deb_package_contents_conffile_and_scripts() {
    if !have("cargo-deb", "--version") {
        println!("SKIPPED: cargo-deb is not installed (cargo install --locked cargo-deb)");
        return;
    }
    if !have("dpkg-deb", "--version") {
        println!("SKIPPED: dpkg-deb is not installed");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run(Command::new(root.join("tests/packaging/build-deb.sh")).current_dir(root));
    let deb = PathBuf::from(
        out.lines()
            .last()
            .expect("build-deb.sh printed nothing")
            .trim(),
    );
    assert!(
        deb.extension().is_some_and(|e| e == "deb") && deb.exists(),
        "no package at {deb:?}"
    );
    assert!(
        deb.file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with("_amd64.deb")),
        "{deb:?}"
    );

    // The file list.
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let files: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for want in [
        "./usr/bin/gsmgate",
        "./usr/lib/systemd/system/gsmgate.service",
        "./usr/lib/sysusers.d/gsmgate.conf",
        "./usr/lib/tmpfiles.d/gsmgate.conf",
        "./usr/lib/udev/rules.d/60-gsmgate.rules",
        "./etc/gsmgate/gsmgate.toml",
        "./usr/share/man/man1/gsmgate.1.gz",
        "./usr/share/man/man1/gsmgate-doctor.1.gz",
        "./usr/share/man/man1/gsmgate-modems-scan.1.gz",
        "./usr/share/bash-completion/completions/gsmgate",
        "./usr/share/zsh/vendor-completions/_gsmgate",
        "./usr/share/fish/vendor_completions.d/gsmgate.fish",
        "./usr/share/doc/gsmgate/raspberry-pi.md",
        "./usr/share/doc/gsmgate/modems.md",
        "./usr/share/doc/gsmgate/README.md",
        "./usr/share/doc/gsmgate/http-api.md",
    ] {
        assert!(files.contains(&want), "{want} missing from:\n{listing}");
    }
    // Modes: the binary executable, the config not world-readable (it may hold SIM PINs).
    let mode_of = |path: &str| {
        listing
            .lines()
            .find(|l| l.split_whitespace().nth(5) == Some(path))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_owned)
    };
    assert_eq!(mode_of("./usr/bin/gsmgate").as_deref(), Some("-rwxr-xr-x"));
    assert_eq!(
        mode_of("./etc/gsmgate/gsmgate.toml").as_deref(),
        Some("-rw-r-----")
    );

    // Control: conffile marking and the maintainer scripts.
    let info = run(Command::new("dpkg-deb").arg("-I").arg(&deb));
    assert!(info.contains("Architecture: amd64"), "{info}");
    assert!(info.contains("Package: gsmgate"), "{info}");
    let control = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(control.path()));
    let read = |name: &str| {
        std::fs::read_to_string(control.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let conffiles = read("conffiles");
    assert_eq!(
        conffiles.lines().collect::<Vec<_>>(),
        vec!["/etc/gsmgate/gsmgate.toml"]
    );
    let postinst = read("postinst");
    assert!(postinst.contains("systemd-sysusers"), "{postinst}");
    assert!(postinst.contains("deb-systemd-helper enable gsmgate.service"));
    assert!(postinst.contains("deb-systemd-invoke $_dh_action gsmgate.service"));
    assert!(postinst.contains("udevadm trigger"));
    assert!(!postinst.contains("#DEBHELPER#"), "token left unreplaced");
    let prerm = read("prerm");
    assert!(
        prerm.contains("deb-systemd-invoke stop gsmgate.service"),
        "{prerm}"
    );
    let postrm = read("postrm");
    let purge = postrm
        .find("if [ \"$1\" = \"purge\" ]; then\n\trm -rf /var/lib/gsmgate")
        .expect("postrm purges /var/lib/gsmgate");
    // Removing (not purging) keeps the data: the only rm of the data is inside the purge branch.
    assert_eq!(postrm.matches("rm -rf /var/lib/gsmgate").count(), 1);
    assert!(purge > 0);

    // The packaged config passes the packaged binary's check-config.
    let tree = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(tree.path()));
    let bin = tree.path().join("usr/bin/gsmgate");
    let conf = tree.path().join("etc/gsmgate/gsmgate.toml");
    let ok = run(Command::new(&bin).arg("check-config").arg(&conf));
    assert!(ok.contains(": OK ("), "{ok}");
    // The C maths library stays unloaded (`daemon::memory`: ~0.5 MB resident when mapped): a
    // new call of a libm function would bring it back without failing anything else.
    if have("readelf", "--version") {
        let dynamic = run(Command::new("readelf").arg("-d").arg(&bin));
        let needed: Vec<&str> = dynamic.lines().filter(|l| l.contains("(NEEDED)")).collect();
        assert!(
            !needed.iter().any(|l| l.contains("libm.so")),
            "the daemon links the C maths library again:\n{}",
            needed.join("\n")
        );
        assert!(needed.iter().any(|l| l.contains("libc.so")), "{dynamic}");
    }
    let bash = std::fs::read_to_string(
        tree.path()
            .join("usr/share/bash-completion/completions/gsmgate"),
    )
    .unwrap();
    assert!(bash.contains("doctor") && bash.contains("scan"));
    let size = std::fs::metadata(&deb).unwrap().len();
    println!("{}: {size} bytes", deb.display());
}
