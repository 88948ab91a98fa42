//! A small Consul agent for tests (Consul cannot be installed here). It implements the four
//! endpoints the adapter uses with Consul's TTL semantics, and asserts every request against
//! Consul's documented agent API: methods, paths, PascalCase body fields (`ID`, `Name`,
//! `Tags`, `Meta`, `Check.CheckID`, `Check.TTL`, `Check.DeregisterCriticalServiceAfter`),
//! duration syntax, and the `X-Consul-Token` header. A request that breaks the contract is
//! answered 400 and recorded, and the test fails on any recorded violation.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

#[derive(Default)]
pub struct Agent {
    services: HashMap<String, (Value, Duration, Option<Instant>)>,
    pub violations: Vec<String>,
    pub requests: Vec<String>,
}

#[derive(Clone)]
struct Fake {
    agent: Arc<Mutex<Agent>>,
    token: Option<String>,
}

fn parse_duration(text: &str) -> Option<Duration> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    if let Some(s) = text.strip_suffix('s') {
        return s.parse().ok().map(Duration::from_secs);
    }
    if let Some(m) = text.strip_suffix('m') {
        return m.parse::<u64>().ok().map(|m| Duration::from_secs(m * 60));
    }
    None
}

impl Fake {
    fn check(
        &self,
        method: &Method,
        expected: Method,
        headers: &HeaderMap,
        what: &str,
    ) -> Result<(), Box<Response>> {
        let mut agent = self.agent.lock().unwrap();
        agent.requests.push(format!("{method} {what}"));
        if *method != expected {
            agent
                .violations
                .push(format!("{what}: method {method}, Consul wants {expected}"));
            return Err(Box::new(StatusCode::METHOD_NOT_ALLOWED.into_response()));
        }
        if let Some(token) = &self.token {
            let sent = headers.get("X-Consul-Token").and_then(|v| v.to_str().ok());
            if sent != Some(token.as_str()) {
                agent
                    .violations
                    .push(format!("{what}: missing or wrong X-Consul-Token"));
                return Err(Box::new(
                    (StatusCode::FORBIDDEN, "ACL not found").into_response(),
                ));
            }
        }
        Ok(())
    }

    fn violation(&self, message: String) -> Response {
        self.agent.lock().unwrap().violations.push(message.clone());
        (StatusCode::BAD_REQUEST, message).into_response()
    }
}

async fn register(
    State(fake): State<Fake>,
    method: Method,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Err(response) = fake.check(&method, Method::PUT, &headers, "register") {
        return *response;
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return fake.violation("register: body is not JSON".into());
    };
    for field in ["ID", "Name", "Tags", "Meta", "Check"] {
        if body.get(field).is_none() {
            return fake.violation(format!("register: missing `{field}`"));
        }
    }
    let meta_ok = body["Meta"]
        .as_object()
        .is_some_and(|meta| meta.values().all(Value::is_string));
    if !meta_ok {
        return fake.violation("register: Meta must map strings to strings".into());
    }
    let check = &body["Check"];
    let id = body["ID"].as_str().unwrap_or_default().to_owned();
    if check["CheckID"].as_str() != Some(&format!("service:{id}")) {
        return fake.violation("register: Check.CheckID must be service:<ID>".into());
    }
    let Some(ttl) = check["TTL"].as_str().and_then(parse_duration) else {
        return fake.violation("register: Check.TTL must be a Consul duration".into());
    };
    if check["DeregisterCriticalServiceAfter"]
        .as_str()
        .and_then(parse_duration)
        .is_none()
    {
        return fake.violation("register: Check.DeregisterCriticalServiceAfter must be set".into());
    }
    if let Some(port) = body.get("Port")
        && !port.is_u64()
    {
        return fake.violation("register: Port must be a number".into());
    }
    fake.agent
        .lock()
        .unwrap()
        .services
        .insert(id, (body, ttl, None));
    StatusCode::OK.into_response()
}

async fn deregister(
    State(fake): State<Fake>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(response) = fake.check(&method, Method::PUT, &headers, "deregister") {
        return *response;
    }
    let removed = fake.agent.lock().unwrap().services.remove(&id);
    match removed {
        Some(_) => StatusCode::OK.into_response(),
        None => (StatusCode::NOT_FOUND, format!("Unknown service ID {id:?}")).into_response(),
    }
}

async fn pass(
    State(fake): State<Fake>,
    method: Method,
    headers: HeaderMap,
    Path(check): Path<String>,
) -> Response {
    if let Err(response) = fake.check(&method, Method::PUT, &headers, "check pass") {
        return *response;
    }
    let Some(id) = check.strip_prefix("service:") else {
        return fake.violation(format!("check pass: `{check}` is not a service check id"));
    };
    let mut agent = fake.agent.lock().unwrap();
    match agent.services.get_mut(id) {
        Some(entry) => {
            entry.2 = Some(Instant::now());
            StatusCode::OK.into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("Unknown check ID {check:?}")).into_response(),
    }
}

async fn health(
    State(fake): State<Fake>,
    method: Method,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(response) = fake.check(&method, Method::GET, &headers, "health service") {
        return *response;
    }
    let passing_only = query.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|p| p == "passing" || p == "passing=true" || p == "passing=1")
    });
    if !passing_only {
        return fake.violation("health service: discovery must ask for ?passing".into());
    }
    let agent = fake.agent.lock().unwrap();
    let now = Instant::now();
    let mut entries = Vec::new();
    for (id, (body, ttl, last)) in &agent.services {
        let passing = last.is_some_and(|at| now.duration_since(at) <= *ttl);
        if body["Name"].as_str() == Some(name.as_str()) && passing {
            entries.push(serde_json::json!({
                "Node": {"Node": "test-node", "Address": "127.0.0.1"},
                "Service": {"ID": id, "Service": body["Name"], "Tags": body["Tags"], "Meta": body["Meta"], "Port": body.get("Port").cloned().unwrap_or(0.into()), "Address": ""},
                "Checks": [{"CheckID": format!("service:{id}"), "Status": "passing"}],
            }));
        }
    }
    axum::Json(Value::Array(entries)).into_response()
}

async fn unknown(State(fake): State<Fake>, method: Method, uri: Uri) -> Response {
    fake.violation(format!(
        "{method} {uri}: not an endpoint of Consul's agent API used here"
    ))
}

/// Starts the fake agent; returns its address and state.
pub async fn start(token: Option<&str>) -> (SocketAddr, Arc<Mutex<Agent>>) {
    let agent = Arc::new(Mutex::new(Agent::default()));
    let fake = Fake {
        agent: agent.clone(),
        token: token.map(str::to_owned),
    };
    let app = Router::new()
        .route("/v1/agent/service/register", axum::routing::any(register))
        .route(
            "/v1/agent/service/deregister/{id}",
            axum::routing::any(deregister),
        )
        .route("/v1/agent/check/pass/{check}", axum::routing::any(pass))
        .route("/v1/health/service/{name}", axum::routing::any(health))
        .fallback(unknown)
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, agent)
}

/// Forgets every registration, as a restarted Consul agent without persistence would.
pub fn forget_all(agent: &Arc<Mutex<Agent>>) {
    agent.lock().unwrap().services.clear();
}
