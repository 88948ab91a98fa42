//! E-mail alerts: one plain-text message per alert to every recipient of the subscription,
//! through the operator's relay (`[delivery.smtp]`) over STARTTLS or implicit TLS, with
//! lettre. The `Message-ID` is `<idempotency key@tge-swarm>`, so a mail client shows a repeat
//! as the same message; a 4xx reply is retried, a 5xx reply is a permanent refusal.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use swarm_shared::config::{SmtpConfig, SmtpSecurity};
use swarm_shared::outbound::error_chain;

use super::channels::{Answer, MAX_ERROR_CHARS, Message, truncate};

/// Longest e-mail body (the alert's text with every source listed).
const EMAIL_MAX_CHARS: usize = 20_000;

/// The SMTP relay e-mail alerts go through, built once from `[delivery.smtp]`.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The relay of `config`, each message sent within `timeout`. Errors say which setting is
    /// wrong.
    pub fn new(config: &SmtpConfig, timeout: Duration) -> Result<Mailer, String> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|err| format!("delivery.smtp.from: `{}`: {err}", config.from))?;
        let mut tls = TlsParameters::builder(config.host.clone());
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|err| {
                format!("delivery.smtp.ca_file: reading {}: {err}", path.display())
            })?;
            if !String::from_utf8_lossy(&pem).contains("BEGIN CERTIFICATE") {
                return Err(format!(
                    "delivery.smtp.ca_file: {} holds no PEM certificate",
                    path.display()
                ));
            }
            let certificate = Certificate::from_pem(&pem)
                .map_err(|err| format!("delivery.smtp.ca_file: {}: {err}", path.display()))?;
            tls = tls.add_root_certificate(certificate);
        }
        let tls = tls
            .build_rustls()
            .map_err(|err| format!("delivery.smtp: TLS settings: {err}"))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .timeout(Some(timeout))
            .tls(match config.security {
                SmtpSecurity::Starttls => Tls::Required(tls),
                SmtpSecurity::Tls => Tls::Wrapper(tls),
            });
        if let Some(username) = &config.username {
            builder = builder.credentials(Credentials::new(
                username.clone(),
                config.password.clone().unwrap_or_default(),
            ));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
        })
    }

    /// Sends `message` to `to` as one e-mail.
    pub async fn send(&self, to: &[String], message: &Message<'_>) -> Answer {
        let text = message.text(EMAIL_MAX_CHARS);
        // The text's first line, with ASCII separators so that a plain subject stays plain.
        let subject = text
            .lines()
            .next()
            .unwrap_or("tge-swarm alert")
            .replace(" · ", " - ");
        let mut email = lettre::Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(format!("<{}@tge-swarm>", message.idempotency_key)));
        for (index, address) in to.iter().enumerate() {
            match address.parse::<Mailbox>() {
                Ok(mailbox) => email = email.to(mailbox),
                Err(err) => {
                    return Answer::Smtp {
                        code: None,
                        permanent: true,
                        detail: format!("channel.to[{index}]: `{address}`: {err}"),
                    };
                }
            }
        }
        let email = match email.body(text) {
            Ok(email) => email,
            Err(err) => {
                return Answer::Smtp {
                    code: None,
                    permanent: true,
                    detail: format!("building the e-mail: {err}"),
                };
            }
        };
        match self.transport.send(email).await {
            Ok(response) => Answer::Accepted {
                status: u16::from(response.code()),
            },
            Err(err) if err.is_permanent() || err.is_transient() => Answer::Smtp {
                code: err.status().map(u16::from),
                permanent: err.is_permanent(),
                detail: truncate(&error_chain(&err), MAX_ERROR_CHARS),
            },
            Err(err) => Answer::Transport {
                error: truncate(&error_chain(&err), MAX_ERROR_CHARS),
            },
        }
    }
}
