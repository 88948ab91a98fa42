//! A local SMTP relay for the tests, speaking the part of RFC 5321 a submission client uses:
//! EHLO, STARTTLS (RFC 3207) with the test certificate in `fixtures/tls`, AUTH PLAIN (RFC
//! 4954), MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP and QUIT. It refuses mail before
//! STARTTLS (530), so a message it holds was sent encrypted, and answers some recipients on
//! purpose: `reject…@` gets 550 (permanent), `busy…@` gets 451 once (transient).
//!
//! Written here because no maintained crate is a small SMTP server with STARTTLS; the
//! alternative, a Python `aiosmtpd` process, would add a runtime the tests do not otherwise
//! need.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine as _;
use swarm_shared::config::{SmtpConfig, SmtpSecurity};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

/// The CA that signed the sink's certificate (for `localhost` and 127.0.0.1): test-only.
pub fn test_ca_file() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls/ca.pem"))
}

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The envelope's sender.
    pub from: String,
    /// The envelope's recipients.
    pub to: Vec<String>,
    /// The message (headers and body), dot-unstuffed, lines joined with CRLF.
    pub data: String,
    /// The user it logged in as.
    pub user: Option<String>,
    /// When it arrived.
    pub at: Instant,
}

impl Mail {
    /// A header's value (the first line of it), by name, case ignored.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

#[derive(Default)]
struct Shared {
    mail: Vec<Mail>,
    /// `busy…@` recipients already refused once.
    deferred: Vec<String>,
}

/// A running sink.
#[derive(Clone)]
pub struct SmtpSink {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// The user and password it accepts.
    pub credentials: (String, String),
    shared: Arc<Mutex<Shared>>,
}

impl SmtpSink {
    /// Starts a sink on an ephemeral port, accepting `user` / `password`.
    pub async fn start(user: &str, password: &str) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tls_acceptor();
        let sink = SmtpSink {
            port,
            credentials: (user.to_owned(), password.to_owned()),
            shared: Arc::new(Mutex::new(Shared::default())),
        };
        let served = sink.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let sink = served.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Err(err) = sink.session(stream, acceptor).await {
                        eprintln!("smtp sink: session ended: {err}");
                    }
                });
            }
        });
        sink
    }

    /// The messages accepted so far.
    pub fn mail(&self) -> Vec<Mail> {
        self.shared.lock().unwrap().mail.clone()
    }

    /// A `[delivery.smtp]` for this sink: STARTTLS to `localhost`, trusting the test CA,
    /// logging in with its credentials.
    pub fn config(&self) -> SmtpConfig {
        SmtpConfig {
            host: "localhost".into(),
            port: self.port,
            security: SmtpSecurity::Starttls,
            from: "TGE alerts <alerts@tge-swarm.test>".into(),
            username: Some(self.credentials.0.clone()),
            password: Some(self.credentials.1.clone()),
            ca_file: Some(test_ca_file()),
        }
    }

    async fn session(
        &self,
        stream: tokio::net::TcpStream,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> std::io::Result<()> {
        let mut plain = BufReader::new(stream);
        plain
            .get_mut()
            .write_all(b"220 localhost ESMTP tge-swarm test sink\r\n")
            .await?;
        if self.converse(&mut plain, false).await? == Next::StartTls {
            // The client waits for the 220 before its handshake: nothing is buffered.
            let encrypted = acceptor.accept(plain.into_inner()).await?;
            self.converse(&mut BufReader::new(encrypted), true).await?;
        }
        Ok(())
    }

    async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut BufReader<S>,
        tls: bool,
    ) -> std::io::Result<Next> {
        let mut user = None;
        let mut from = None;
        let mut to = Vec::new();
        loop {
            let Some(line) = read_line(stream).await? else {
                return Ok(Next::Done);
            };
            let upper = line.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                let mut reply = String::from("250-localhost\r\n250-8BITMIME\r\n");
                if tls {
                    reply.push_str("250-AUTH PLAIN\r\n");
                } else {
                    reply.push_str("250-STARTTLS\r\n");
                }
                reply.push_str("250 SIZE 10485760\r\n");
                reply
            } else if upper == "STARTTLS" {
                if tls {
                    "503 5.5.1 TLS already active\r\n".into()
                } else {
                    write(stream, "220 2.0.0 Ready to start TLS\r\n").await?;
                    return Ok(Next::StartTls);
                }
            } else if upper.starts_with("AUTH PLAIN") {
                if !tls {
                    "530 5.7.0 Must issue a STARTTLS command first\r\n".into()
                } else {
                    let initial = line[10..].trim().to_owned();
                    let response = if initial.is_empty() {
                        write(stream, "334 \r\n").await?;
                        read_line(stream).await?.unwrap_or_default()
                    } else {
                        initial
                    };
                    match self.check_plain(&response) {
                        Some(name) => {
                            user = Some(name);
                            "235 2.7.0 Authentication successful\r\n".into()
                        }
                        None => "535 5.7.8 Authentication credentials invalid\r\n".into(),
                    }
                }
            } else if upper.starts_with("MAIL FROM:") {
                if !tls {
                    "530 5.7.0 Must issue a STARTTLS command first\r\n".into()
                } else if user.is_none() {
                    "530 5.7.0 Authentication required\r\n".into()
                } else {
                    from = Some(address(&line[10..]));
                    "250 2.1.0 Ok\r\n".into()
                }
            } else if upper.starts_with("RCPT TO:") {
                let recipient = address(&line[8..]);
                if from.is_none() {
                    "503 5.5.1 MAIL first\r\n".into()
                } else if recipient.starts_with("reject") {
                    "550 5.1.1 Mailbox unavailable\r\n".into()
                } else if recipient.starts_with("busy") && self.defer_once(&recipient) {
                    "451 4.3.0 Try again later\r\n".into()
                } else {
                    to.push(recipient);
                    "250 2.1.5 Ok\r\n".into()
                }
            } else if upper == "DATA" {
                if to.is_empty() {
                    "503 5.5.1 RCPT first\r\n".into()
                } else {
                    write(stream, "354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                    let mut data = Vec::new();
                    loop {
                        let Some(line) = read_line(stream).await? else {
                            return Ok(Next::Done);
                        };
                        if line == "." {
                            break;
                        }
                        let line = line.strip_prefix('.').map_or(line.clone(), str::to_owned);
                        data.push(line);
                    }
                    self.shared.lock().unwrap().mail.push(Mail {
                        from: from.take().unwrap_or_default(),
                        to: std::mem::take(&mut to),
                        data: data.join("\r\n"),
                        user: user.clone(),
                        at: Instant::now(),
                    });
                    "250 2.0.0 Ok: queued\r\n".into()
                }
            } else if upper == "RSET" {
                from = None;
                to.clear();
                "250 2.0.0 Ok\r\n".into()
            } else if upper == "NOOP" {
                "250 2.0.0 Ok\r\n".into()
            } else if upper == "QUIT" {
                write(stream, "221 2.0.0 Bye\r\n").await?;
                return Ok(Next::Done);
            } else {
                "502 5.5.2 Command not recognized\r\n".into()
            };
            write(stream, &reply).await?;
        }
    }

    /// The user of an AUTH PLAIN response (`base64("\0user\0password")`) if it matches.
    fn check_plain(&self, response: &str) -> Option<String> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(response.trim())
            .ok()?;
        let mut parts = decoded.split(|&b| b == 0);
        let _authorisation = parts.next()?;
        let user = String::from_utf8(parts.next()?.to_vec()).ok()?;
        let password = String::from_utf8(parts.next()?.to_vec()).ok()?;
        (user == self.credentials.0 && password == self.credentials.1).then_some(user)
    }

    /// Whether `recipient` is deferred now (the first time only).
    fn defer_once(&self, recipient: &str) -> bool {
        let mut shared = self.shared.lock().unwrap();
        if shared.deferred.iter().any(|seen| seen == recipient) {
            return false;
        }
        shared.deferred.push(recipient.to_owned());
        true
    }
}

#[derive(Debug, PartialEq)]
enum Next {
    StartTls,
    Done,
}

/// One CRLF-terminated line without its ending; none at the end of the stream.
async fn read_line<S: AsyncRead + Unpin>(
    stream: &mut BufReader<S>,
) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if stream.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

async fn write<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    text: &str,
) -> std::io::Result<()> {
    stream.get_mut().write_all(text.as_bytes()).await?;
    stream.get_mut().flush().await
}

/// The address in `<...>` (parameters after it ignored).
fn address(argument: &str) -> String {
    let argument = argument.trim();
    match (argument.find('<'), argument.find('>')) {
        (Some(start), Some(end)) if start < end => argument[start + 1..end].to_owned(),
        _ => argument.split_whitespace().next().unwrap_or("").to_owned(),
    }
}

/// A TLS acceptor with the test certificate for `localhost`.
fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls");
    let certificates = CertificateDer::pem_file_iter(format!("{dir}/localhost.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/localhost.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certificates, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}
