use super::*;

fn opts() -> Options {
    Options::new("http://localhost:8080/lib/sockjs.js")
}

fn get<'a>(method: &'a str, path: &'a str) -> Request<'a> {
    Request {
        method,
        path,
        now_unix: 1_700_000_000,
        entropy: 7,
        ..Request::default()
    }
}

#[test]
fn greeting() {
    let a = answer(&get("GET", "/"), &opts());
    assert_eq!((a.status, a.body.as_str()), (200, "Welcome to SockJS!\n"));
    assert_eq!(a.header_value("content-type"), Some(TEXT_PLAIN));
}

#[test]
fn unknown_paths_and_methods() {
    let a = answer(&get("GET", "/nope"), &opts());
    assert_eq!((a.status, a.body.as_str()), (404, "404 Error: Page not found\n"));
    let a = answer(&get("DELETE", "/info"), &opts());
    assert_eq!(a.status, 405);
    assert_eq!(a.header_value("Allow"), Some("OPTIONS, GET"));
}

#[test]
fn info_reports_configuration_and_entropy() {
    let mut o = opts();
    o.jsessionid = Jsessionid::Cookie;
    o.base_url = Some("http://x".into());
    let a = answer(&get("GET", "/info"), &o);
    assert_eq!(a.status, 200);
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["websocket"], true);
    assert_eq!(v["cookie_needed"], true);
    assert_eq!(v["origins"], serde_json::json!(["*:*"]));
    assert_eq!(v["entropy"], 7);
    assert_eq!(v["base_url"], "http://x");
    assert_eq!(a.header_value("Cache-Control"), Some(NO_CACHE));
    assert_eq!(a.header_value("Access-Control-Allow-Origin"), Some("*"));
    // No JSESSIONID on GET /info, as in sockjs-node.
    assert_eq!(a.header_value("Set-Cookie"), None);
}

#[test]
fn info_preflight() {
    let mut r = get("OPTIONS", "/info");
    r.origin = Some("http://a.example");
    let a = answer(&r, &opts());
    assert_eq!(a.status, 204);
    assert_eq!(a.header_value("Access-Control-Allow-Methods"), Some("OPTIONS, GET"));
    assert_eq!(a.header_value("Access-Control-Max-Age"), Some("31536000"));
    assert_eq!(a.header_value("Access-Control-Allow-Origin"), Some("http://a.example"));
    assert_eq!(a.header_value("Access-Control-Allow-Credentials"), Some("true"));
    assert_eq!(a.header_value("Cache-Control"), Some("public, max-age=31536000"));
    assert_eq!(a.header_value("Expires"), Some("Wed, 13 Nov 2024 22:13:20 GMT"));
}

#[test]
fn iframe_etag_and_not_modified() {
    let o = opts();
    let a = answer(&get("GET", "/iframe.html"), &o);
    assert_eq!(a.status, 200);
    assert!(a
        .body
        .contains("<script src=\"http://localhost:8080/lib/sockjs.js\"></script>"));
    let etag = a.header_value("ETag").unwrap().to_owned();
    let mut r = get("GET", "/iframe-1.2.3.html");
    r.if_none_match = Some(&etag);
    let a = answer(&r, &o);
    assert_eq!((a.status, a.body.as_str()), (304, ""));
}

#[test]
fn xhr_send_payload_errors() {
    let o = opts();
    let mut r = get("POST", "/a/b/xhr_send");
    for (body, status, text) in [
        ("", 500, "Payload expected."),
        ("[\"x", 500, "Broken JSON encoding."),
        ("{}", 500, "Payload expected."),
    ] {
        r.body = body.as_bytes();
        let a = answer(&r, &o);
        assert_eq!((a.status, a.body.as_str()), (status, text), "{body:?}");
        assert_eq!(a.then, Then::End);
    }
    r.body = b"[\"x\"]";
    let a = answer(&r, &o);
    assert_eq!(a.status, 204);
    assert_eq!(
        a.then,
        Then::Deliver {
            session: "b".into(),
            messages: vec!["x".into()]
        }
    );
    let nf = a.into_not_found();
    assert_eq!(nf.status, 404);
    assert_eq!(nf.header_value("Cache-Control"), Some(NO_CACHE));
}

#[test]
fn xhr_send_with_an_unsupported_content_type_is_logged() {
    let mut r = get("POST", "/a/b/xhr_send");
    r.body = b"[\"x\"]";
    r.content_type = Some("image/png");
    let a = answer(&r, &opts());
    assert_eq!((a.status, a.body.as_str()), (500, "Payload expected."));
    assert!(a.log.unwrap().1.contains("image/png"));
}

#[test]
fn jsonp_send_form_and_text() {
    let o = opts();
    let mut r = get("POST", "/a/b/jsonp_send");
    r.content_type = Some("application/x-www-form-urlencoded");
    r.body = b"d=%5B%22x%22%5D";
    let a = answer(&r, &o);
    assert_eq!((a.status, a.body.as_str()), (200, "ok"));
    assert_eq!(
        a.then,
        Then::Deliver {
            session: "b".into(),
            messages: vec!["x".into()]
        }
    );
    r.content_type = Some("text/plain");
    r.body = b"[\"y\"]";
    assert_eq!(
        answer(&r, &o).then,
        Then::Deliver {
            session: "b".into(),
            messages: vec!["y".into()]
        }
    );
    r.body = b"d=";
    r.content_type = Some("application/x-www-form-urlencoded");
    assert_eq!(answer(&r, &o).body, "Payload expected.");
}

#[test]
fn jsonp_callback_validation() {
    let o = opts();
    let mut r = get("GET", "/a/b/jsonp");
    assert_eq!(answer(&r, &o).body, "\"callback\" parameter required");
    r.query = "c=%3Cscript%3E";
    assert_eq!(answer(&r, &o).body, "invalid \"callback\" parameter");
    r.query = "c=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert_eq!(answer(&r, &o).body, "invalid \"callback\" parameter");
    r.query = "c=%63allback";
    let a = answer(&r, &o);
    assert_eq!(a.status, 200);
    assert_eq!(a.header_value("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(
        a.then,
        Then::Receive {
            session: "b".into(),
            framing: Framing::Jsonp {
                callback: "callback".into()
            }
        }
    );
}

#[test]
fn htmlfile_page_is_padded() {
    let mut r = get("GET", "/a/b/htmlfile");
    r.query = "c=cb";
    let a = answer(&r, &opts());
    assert_eq!(a.body.len(), 1029);
    assert!(a.body.contains("var c = parent.cb;"));
    assert!(a.body.ends_with("</script>                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                             \r\n\r\n"));
}

#[test]
fn jsessionid_cookie_is_echoed_or_dummy() {
    let mut o = opts();
    o.jsessionid = Jsessionid::Cookie;
    let mut r = get("POST", "/a/b/xhr");
    assert_eq!(
        answer(&r, &o).header_value("Set-Cookie"),
        Some("JSESSIONID=dummy; path=/")
    );
    r.cookie = Some("a=1; JSESSIONID=abcdef");
    assert_eq!(
        answer(&r, &o).header_value("Set-Cookie"),
        Some("JSESSIONID=abcdef; path=/")
    );
    o.jsessionid = Jsessionid::Function;
    let a = answer(&r, &o);
    assert!(a.call_jsessionid);
    assert_eq!(a.header_value("Set-Cookie"), None);
}

#[test]
fn eventsource_treats_null_origin_as_none() {
    let mut r = get("GET", "/a/b/eventsource");
    r.origin = Some("null");
    let a = answer(&r, &opts());
    assert_eq!(a.header_value("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(a.body, "\r\n");
}

#[test]
fn disable_cors_drops_cors_headers_and_origins() {
    let mut o = opts();
    o.disable_cors = true;
    let mut r = get("POST", "/a/b/xhr");
    r.origin = Some("http://x");
    assert_eq!(answer(&r, &o).header_value("Access-Control-Allow-Origin"), None);
    let info = answer(&get("GET", "/info"), &o);
    assert!(!info.body.contains("origins"));
}

#[test]
fn websocket_url_over_plain_http_is_400() {
    let a = answer(&get("GET", "/a/b/websocket"), &opts());
    assert_eq!((a.status, a.body.as_str()), (400, "Not a valid websocket request"));
    assert_eq!(a.then, Then::WebSocket { raw: false });
}

#[test]
fn too_large_bodies_get_413() {
    let mut r = get("POST", "/a/b/xhr_send");
    r.body_too_large = true;
    let a = answer(&r, &opts());
    assert_eq!(a.status, 413);
    assert!(a.log.is_some());
}

#[test]
fn http_dates() {
    assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_eq!(http_date(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT");
}

#[test]
fn raw_responses_close_the_connection() {
    let text = String::from_utf8(raw_response(&not_found())).unwrap();
    assert!(text.starts_with("HTTP/1.1 404 Not Found\r\nConnection: close\r\n"));
    assert!(text.ends_with("\r\n\r\n404 Error: Page not found\n"));
}

#[test]
fn a_base_url_function_is_asked_for_by_info_only() {
    let mut o = opts();
    o.base_url_is_function = true;
    assert!(answer(&get("GET", "/info"), &o).needs_base_url);
    assert!(!answer(&get("POST", "/a/b/xhr"), &o).needs_base_url);
    let mut r = get("GET", "/info");
    r.base_url = Some("http://b");
    let a = answer(&r, &o);
    assert!(!a.needs_base_url);
    assert!(a.body.contains("\"base_url\":\"http://b\""));
}

fn upgrade_headers() -> UpgradeHeaders<'static> {
    UpgradeHeaders {
        upgrade: Some("websocket"),
        connection: Some("keep-alive, Upgrade"),
        version: Some("13"),
        key: Some("dGhlIHNhbXBsZSBub25jZQ=="),
    }
}

#[test]
fn upgrades_to_websocket_urls_proceed() {
    let o = opts();
    assert_eq!(
        upgrade(&get("GET", "/a/b/websocket"), &upgrade_headers(), &o),
        Ok(false)
    );
    assert_eq!(upgrade(&get("GET", "/websocket"), &upgrade_headers(), &o), Ok(true));
}

#[test]
fn bad_upgrades_are_refused_with_a_status() {
    let o = opts();
    let r = get("GET", "/a/b/websocket");
    let old = UpgradeHeaders {
        version: Some("8"),
        ..upgrade_headers()
    };
    let a = upgrade(&r, &old, &o).unwrap_err();
    assert_eq!(a.status, 400);
    assert_eq!(a.header_value("Sec-WebSocket-Version"), Some("13"));
    let no_conn = UpgradeHeaders {
        connection: Some("close"),
        ..upgrade_headers()
    };
    assert_eq!(upgrade(&r, &no_conn, &o).unwrap_err().status, 400);
    let bad_key = UpgradeHeaders {
        key: Some("short"),
        ..upgrade_headers()
    };
    assert_eq!(upgrade(&r, &bad_key, &o).unwrap_err().status, 400);
    assert_eq!(
        upgrade(&get("GET", "/info"), &upgrade_headers(), &o)
            .unwrap_err()
            .status,
        400
    );
    assert_eq!(
        upgrade(&get("GET", "/nope/x"), &upgrade_headers(), &o)
            .unwrap_err()
            .status,
        404
    );
    assert_eq!(
        upgrade(&get("POST", "/a/b/websocket"), &upgrade_headers(), &o)
            .unwrap_err()
            .status,
        405
    );
    let mut no_ws = opts();
    no_ws.enabled.websocket = false;
    assert_eq!(upgrade(&r, &upgrade_headers(), &no_ws).unwrap_err().status, 404);
}

#[test]
fn origins_outside_the_allow_list_get_403() {
    let mut o = opts();
    o.origins = vec!["https://app.example.com".into()];
    let mut r = get("POST", "/a/b/xhr");
    r.origin = Some("https://evil.example");
    let a = answer(&r, &o);
    assert_eq!(a.status, 403);
    assert!(a.log.is_some());
    r.origin = Some("https://app.example.com");
    assert_eq!(answer(&r, &o).status, 200);
    r.origin = None;
    assert_eq!(answer(&r, &o).status, 200);
    let info = answer(&get("GET", "/info"), &o);
    assert!(
        info.body.contains("\"origins\":[\"https://app.example.com\"]"),
        "{}",
        info.body
    );
}
