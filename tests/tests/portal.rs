//! The portal as a person sees it: headless Chromium (Debian's) loads each member's page of
//! a local lab, runs its script against the API, and the resulting DOM names the member in
//! the title and shows every member's status; a screenshot is taken as well.

use mirrorlab_tests::{chromium, lab_members, mirrorlab_ok, tool_available};

#[test]
fn each_members_portal_names_it_and_shows_every_members_status() {
    if !tool_available("chromium", "portal: headless Chromium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let labs = dir.path().join("labs");
    let phonebook = mirrorlab_tests::repo_manifest("phonebook.yaml").display().to_string();
    mirrorlab_ok(dir.path(), &labs, &["up", &phonebook]);
    let _lab = mirrorlab_tests::DownOnDrop(dir.path(), labs.clone());
    // The engines have users: Chromium answers the page's Basic challenge with the
    // credentials in the URL, then sends them with every request of the page.
    let password = mirrorlab_tests::lab_password(&labs).expect("up drew an admin password");
    let expected = [("MIRRORA", "Primary"), ("MIRRORB", "Backup"), ("MIRRORC", "Connected")];
    for m in lab_members(dir.path(), &labs) {
        let name = m["name"].as_str().unwrap().to_string();
        let url = format!("http://admin:{password}@127.0.0.1:{}/", m["web_port"]);
        let own = expected.iter().find(|(n, _)| *n == name).unwrap().1;
        let out = chromium(&url, &dir.path().join("profile"), &["--dump-dom"]);
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && dom.contains("</html>"),
            "chromium on {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(dom.contains(&format!("<title>{name} ({own}) · Mirrorlab</title>")), "{name}'s title:\n{dom}");
        assert!(dom.contains(&format!("<h1>{name}<small>")), "{name}'s header");
        assert!(dom.contains("id=\"updated\""), "an updated-at time");
        assert!(dom.contains("id=\"chart-writes\"") && dom.contains("id=\"chart-latency\""), "the two charts");
        assert!(dom.contains("Mirror journal"), "the mirror journal in the journal panel");
        // The primary's monitor lists every member with its status; the others list
        // themselves and the primary.
        let rows: Vec<(String, String)> = dom
            .split("<tr data-member=\"")
            .skip(1)
            .filter_map(|r| {
                let (member, rest) = r.split_once('"')?;
                let status = rest.split_once("data-status=\"")?.1.split_once('"')?.0;
                Some((member.to_string(), status.to_string()))
            })
            .collect();
        let want: Vec<(String, String)> = expected
            .iter()
            .filter(|(n, _)| name == "MIRRORA" || *n == name || *n == "MIRRORA")
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect();
        assert_eq!(rows, want, "{name}'s member table");
    }
    // A picture of the primary's page, as a person would see it.
    let shot = dir.path().join("portal.png");
    let url = format!("http://admin:{password}@127.0.0.1:{}/", lab_members(dir.path(), &labs)[0]["web_port"]);
    let out = chromium(
        &url,
        &dir.path().join("profile"),
        &["--window-size=1400,1300", &format!("--screenshot={}", shot.display())],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "a screenshot of {} bytes", png.len());
}
