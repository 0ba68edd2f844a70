//! The server behind the nginx configuration docs/DEPLOY.md gives (issue 15, item 5),
//! taken from the document itself, with Debian's nginx (unpacked into `.tools/nginx` by
//! scripts/setup, never installed as a service) and a certificate made here:
//!
//! - https reaches the server; sign-in sets the `__Host-` cookie with `Secure`, and the
//!   answers carry HSTS (`--public-url https://…`);
//! - the client's address is the one nginx saw (`--trusted-proxy`), in the audit log,
//!   not nginx's own; what the client writes in `X-Forwarded-For` is not believed;
//! - the sync WebSocket upgrades through the proxy;
//! - a write from another origin is refused through it as well.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{StatusCode, header};
use serde_json::json;
use wardcheck_tests::server::{PASSWORD, ServeOptions, Server};

/// The address the test's client speaks from: not the proxy's (127.0.0.1).
const CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);

/// Debian's nginx as scripts/setup unpacks it.
fn nginx() -> PathBuf {
    if let Some(p) = std::env::var_os("WARDCHECK_NGINX") {
        return PathBuf::from(p);
    }
    let tools = std::env::var_os("WARDCHECK_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| wardcheck_tests::workspace_root().join(".tools"));
    let p = tools.join("nginx/usr/sbin/nginx");
    assert!(
        p.exists(),
        "{} is missing: scripts/setup unpacks Debian's nginx there",
        p.display()
    );
    p
}

/// The first ```nginx block of docs/DEPLOY.md's reverse-proxy section.
fn documented_config() -> String {
    let doc =
        std::fs::read_to_string(wardcheck_tests::workspace_root().join("docs/DEPLOY.md")).unwrap();
    let section = &doc[doc
        .find("## The reverse proxy (nginx)")
        .expect("the section")..];
    let start = section.find("```nginx\n").expect("an nginx block") + "```nginx\n".len();
    let end = start + section[start..].find("\n```").expect("its end");
    section[start..end].to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A self-signed certificate for `localhost`: (certificate, key).
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        ])
        .arg("/CN=localhost")
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl (scripts/setup installs it)")
        .success();
    assert!(ok, "openssl made the certificate");
    (cert, key)
}

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_nginx_front_carries_https_the_client_address_and_the_websocket() {
    let nginx_bin = nginx();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let port = free_port();
    let public = format!("https://localhost:{port}");
    let s = Server::start_with(ServeOptions {
        args: vec![
            "--trusted-proxy".into(),
            "127.0.0.1".into(),
            "--public-url".into(),
            public.clone(),
        ],
        ..ServeOptions::default()
    });
    s.add_user("ivan", "inspector");

    // The document's configuration, pointed at this server, port and certificate.
    let (cert, key) = certificate(dir);
    let config = documented_config()
        .replace("server 127.0.0.1:8080;", &format!("server {};", s.addr))
        .replace(
            "listen 443 ssl http2;",
            &format!("listen 127.0.0.1:{port} ssl http2;"),
        )
        .replace("wardcheck.example.nhs.uk", "localhost")
        .replace("/etc/ssl/wardcheck/fullchain.pem", cert.to_str().unwrap())
        .replace("/etc/ssl/wardcheck/privkey.pem", key.to_str().unwrap());
    assert!(config.contains(&s.addr) && config.contains(&port.to_string()));
    for d in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let d = dir.display();
    let conf = format!(
        // One process (no master and worker), so that stopping the child stops nginx.
        "daemon off;\nmaster_process off;\nuser root;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log;\nevents {{ worker_connections 128; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n\
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{config}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(&nginx_bin)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let mut nginx = Nginx(child);

    let c = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap(),
        )
        .local_address(IpAddr::V4(CLIENT))
        .http1_only()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // nginx is up once it answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(res) = c.get(format!("{public}/healthz")).send().await {
            assert_eq!(res.status(), StatusCode::OK);
            break;
        }
        if let Ok(Some(status)) = nginx.0.try_wait() {
            panic!(
                "nginx ended ({status}): {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "nginx did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Sign-in through https: the host-only secure cookie, HSTS. The client also writes an
    // X-Forwarded-For of its own, which is not believed.
    let res = c
        .post(format!("{public}/api/v1/login"))
        .header(header::ORIGIN, &public)
        .header("x-forwarded-for", "198.51.100.66")
        .json(&json!({ "user": "ivan", "password": PASSWORD, "device": "laptop" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000"
    );
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with("__Host-wardcheck_token=") && cookie.contains("; Secure"),
        "{cookie}"
    );
    let token = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let audit = s.cli(&["audit", "tail", "-n", "20"], "");
    let login = audit
        .lines()
        .find(|l| l.contains("\tlogin\t") && l.contains("\tok"))
        .expect("the sign-in is audited");
    assert!(
        login.contains(&format!("\t{CLIENT}\t")),
        "the address nginx saw, not nginx's nor the client's claim: {login}"
    );

    // The sync WebSocket upgrades through the proxy.
    let res = c
        .get(format!("{public}/api/v1/sync"))
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);

    // A write from another origin is refused through the proxy too.
    let res = c
        .post(format!("{public}/api/v1/logout"))
        .header(header::ORIGIN, "https://evil.example")
        .header(header::COOKIE, format!("__Host-wardcheck_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    drop(nginx);
}
