//! Every failure is an RFC 9457 problem document with the request id; none
//! is a 500 unless the server is at fault, and a 500 carries no internal text.

use actix_web::{test, web, App, HttpResponse};
use mapce::error::AppError;
use mapce::extract::JsonBody;
use serde::Deserialize;

use crate::helpers::TestApp;

#[actix_web::test]
async fn unknown_route_is_404_problem() {
    let app = TestApp::spawn().await;
    let resp = app.get("/api/v1/nothing-here").await;
    let body = resp.assert_problem(404, "not_found");
    assert_eq!(body["instance"], "/api/v1/nothing-here");
}

#[actix_web::test]
async fn wrong_method_is_405_problem() {
    let app = TestApp::spawn().await;
    let req = app.request("DELETE", "/api/v1/countries").await;
    app.send(req, None)
        .await
        .assert_problem(405, "method_not_allowed");
    let req = app.request("POST", "/api/v1/regions").await;
    app.send(req, None)
        .await
        .assert_problem(405, "method_not_allowed");
}

#[actix_web::test]
async fn bad_query_parameters_name_the_parameter() {
    let app = TestApp::spawn().await;
    for (path, field) in [
        ("/api/v1/countries?limit=0", "query.limit"),
        ("/api/v1/countries?limit=201", "query.limit"),
        ("/api/v1/countries?limit=abc", "query.limit"),
        ("/api/v1/countries?offset=-1", "query.offset"),
        ("/api/v1/countries?regoin=europa", "query.regoin"),
        ("/api/v1/consulates?active=perhaps", "query.active"),
    ] {
        let body = app.get(path).await.assert_problem(400, "invalid_query");
        assert_eq!(body["errors"][0]["field"], field, "{path}: {body}");
    }
    // well-formed, but naming nothing known: 422, as for a body
    for (path, field) in [
        ("/api/v1/countries?region=atlantis", "query.region"),
        ("/api/v1/countries?region=", "query.region"),
        ("/api/v1/consulates?country=ZZ", "query.country"),
        ("/api/v1/consulates?jurisdiction=", "query.jurisdiction"),
    ] {
        let body = app.get(path).await.assert_problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], field, "{path}: {body}");
    }
}

#[actix_web::test]
async fn request_ids_are_echoed_when_sane_and_replaced_otherwise() {
    let app = TestApp::spawn().await;
    let req = app
        .client()
        .get(format!("{}/healthz", app.base))
        .insert_header(("X-Request-Id", "trace-42.a_b"));
    let resp = app.send(req, None).await;
    assert_eq!(resp.header("x-request-id").as_deref(), Some("trace-42.a_b"));

    let req = app
        .client()
        .get(format!("{}/nope", app.base))
        .insert_header(("X-Request-Id", "bad id;<script>"));
    let resp = app.send(req, None).await;
    let generated = resp.header("x-request-id").expect("an id is generated");
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    assert_eq!(
        resp.assert_problem(404, "not_found")["request_id"],
        generated.as_str()
    );
}

#[actix_web::test]
async fn every_response_forbids_caching_and_sniffing() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/api/v1/regions", "/nope"] {
        let resp = app.get(path).await;
        assert_eq!(
            resp.header("cache-control").as_deref(),
            Some("no-store"),
            "{path}"
        );
        assert_eq!(
            resp.header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
    }
}

// --- JSON bodies: the shared extractor behind every write endpoint ---------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Probe {
    name: String,
    documents: Vec<ProbeDocument>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ProbeDocument {
    number: String,
}

async fn probe(body: JsonBody<Probe>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().body(body.into_inner()?.name))
}

async fn broken() -> Result<HttpResponse, AppError> {
    Err(AppError::internal(anyhow::anyhow!(
        "relation \"secret_table\" does not exist"
    )))
}

/// The production middleware and extractor around two probe routes.
async fn probe_app() -> impl actix_web::dev::Service<
    actix_http::Request,
    Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
    Error = actix_web::Error,
> {
    test::init_service(
        App::new()
            .route("/probe", web::post().to(probe))
            .route("/broken", web::get().to(broken))
            .default_service(web::to(mapce::middleware::fallback))
            .wrap(actix_web::middleware::from_fn(
                mapce::middleware::request_context,
            )),
    )
    .await
}

async fn call(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
    req: test::TestRequest,
) -> crate::helpers::Resp {
    let resp = test::call_service(app, req.to_request()).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = test::read_body(resp).await;
    crate::helpers::Resp {
        status,
        headers,
        body,
    }
}

fn post_json(body: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/probe")
        .insert_header(("content-type", "application/json"))
        .set_payload(body.to_owned())
}

#[actix_web::test]
async fn json_bodies_are_checked_with_the_field_named() {
    let app = probe_app().await;

    let ok = call(
        &app,
        post_json(r#"{"name":"a","documents":[{"number":"1"}]}"#),
    )
    .await;
    assert_eq!(ok.status, 200);

    let body = call(
        &app,
        post_json(r#"{"name":"a","documents":[{"number":5}]}"#),
    )
    .await
    .assert_problem(422, "validation_failed");
    assert_eq!(body["errors"][0]["field"], "body.documents[0].number");

    let body = call(
        &app,
        post_json(r#"{"name":"a","documents":[],"nickname":"x"}"#),
    )
    .await
    .assert_problem(422, "validation_failed");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("nickname")),
        "{body}"
    );

    let body = call(&app, post_json(r#"{"documents":[]}"#))
        .await
        .assert_problem(422, "validation_failed");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("name")),
        "{body}"
    );

    call(&app, post_json(r#"{"name": "a", "#))
        .await
        .assert_problem(400, "malformed_json");
    call(&app, post_json(""))
        .await
        .assert_problem(400, "malformed_json");
}

#[actix_web::test]
async fn json_bodies_need_the_json_content_type() {
    let app = probe_app().await;
    let no_type = test::TestRequest::post()
        .uri("/probe")
        .set_payload(r#"{"name":"a","documents":[]}"#);
    call(&app, no_type)
        .await
        .assert_problem(415, "unsupported_media_type");
    let text = test::TestRequest::post()
        .uri("/probe")
        .insert_header(("content-type", "text/plain"))
        .set_payload(r#"{"name":"a","documents":[]}"#);
    call(&app, text)
        .await
        .assert_problem(415, "unsupported_media_type");
    let charset = test::TestRequest::post()
        .uri("/probe")
        .insert_header(("content-type", "application/json; charset=utf-8"))
        .set_payload(r#"{"name":"a","documents":[]}"#);
    assert_eq!(call(&app, charset).await.status, 200);
}

#[actix_web::test]
async fn json_bodies_over_256_kib_are_413() {
    let app = probe_app().await;
    let big = format!(r#"{{"name":"{}","documents":[]}}"#, "x".repeat(256 * 1024));
    call(&app, post_json(&big))
        .await
        .assert_problem(413, "payload_too_large");
    let fits = format!(r#"{{"name":"{}","documents":[]}}"#, "x".repeat(200 * 1024));
    assert_eq!(call(&app, post_json(&fits)).await.status, 200);
}

#[actix_web::test]
async fn internal_errors_hide_their_cause() {
    let app = probe_app().await;
    let resp = call(&app, test::TestRequest::get().uri("/broken")).await;
    let body = resp.assert_problem(500, "internal_error");
    let text = String::from_utf8_lossy(&resp.body);
    assert!(
        !text.contains("secret_table"),
        "internal text leaked: {text}"
    );
    assert!(body["errors"].is_null());
}
