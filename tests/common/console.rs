//! The admin console as a browser without JavaScript talks to it: form posts with the session
//! cookie, redirects not followed.

/// A request as a browser without JavaScript would send it: form body, cookie, no redirects.
pub fn send(
    method: &str,
    url: &str,
    cookie: Option<&str>,
    form: &str,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let (method, url, cookie, form) = (
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        url.to_string(),
        cookie.map(String::from),
        form.to_string(),
    );
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let mut req = client
                .request(method, &url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form);
            if let Some(c) = cookie {
                req = req.header("cookie", format!("tributary_admin={c}"));
            }
            for (k, v) in extra {
                req = req.header(k, v);
            }
            let resp = req.send().await.unwrap();
            let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
            (status, headers, resp.text().await.unwrap())
        })
    })
    .join()
    .unwrap()
}

/// Signs in over plain HTTP: (session id, its Set-Cookie header, the CSRF token of its pages).
pub fn sign_in(base: &str, token: &str, extra: &[(&str, &str)]) -> (String, String, String) {
    let (status, h, body) = send(
        "POST",
        &format!("{base}/admin/console/sign-in"),
        None,
        &format!("token={token}"),
        extra,
    );
    assert_eq!(status, 303, "{body}");
    let set = h["set-cookie"].to_str().unwrap().to_string();
    let id = set
        .strip_prefix("tributary_admin=")
        .and_then(|s| s.split(';').next())
        .unwrap()
        .to_string();
    let (_, _, page) = send(
        "GET",
        &format!("{base}/admin/console/partners"),
        Some(&id),
        "",
        &[],
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF token in the page")
        .to_string();
    (id, set, csrf)
}
