//! What clients send (contracts.md section 5), decoded once: [`ClientMessage`] for WebSocket
//! frames, [`CommandBody`] for the HTTP mirror of the alert commands, and [`Command`], the one
//! shape both become before they reach the hub. A message that does not decode is answered
//! with an error naming what is wrong and the `id` it carried, when it carried one.

use serde::Deserialize;
use vigil_engine::{CommandKind, Level};

/// One WebSocket client message, by its `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Ping {
        #[serde(default)]
        id: Option<String>,
    },
    Subscribe(Subscribe),
    Ack(AlertMessage),
    Resolve(AlertMessage),
    Snooze(SnoozeMessage),
    Receipt(PageMessage),
    Decline(PageMessage),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subscribe {
    pub id: Option<String>,
    pub channels: Vec<String>,
    #[serde(default)]
    pub units: Vec<String>,
    #[serde(default)]
    pub patients: Vec<String>,
    pub min_level: Option<Level>,
}

/// `ack` and `resolve`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertMessage {
    pub id: Option<String>,
    pub alert_id: String,
    #[serde(default, deserialize_with = "reason")]
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnoozeMessage {
    pub id: Option<String>,
    pub alert_id: String,
    /// Whole or fractional minutes (1 s to 24 h).
    #[serde(deserialize_with = "minutes")]
    pub minutes: f64,
    #[serde(default, deserialize_with = "reason")]
    pub reason: String,
}

/// `receipt` and `decline` (contracts.md section 5; `id` is optional, additive).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PageMessage {
    pub id: Option<String>,
    pub page_id: String,
    #[serde(default, deserialize_with = "reason")]
    pub reason: String,
}

/// `reason` (a string or null), or an error that names it.
fn reason<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    T::deserialize(d).map_err(|_| serde::de::Error::custom("field `reason` must be a string"))
}

/// `minutes` (a number), or an error that names it.
fn minutes<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    T::deserialize(d).map_err(|_| serde::de::Error::custom("field `minutes` must be a number"))
}

/// A person's command, from either protocol, ready for the hub.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub kind: CommandKind,
    /// The alert (`ack`, `resolve`, `snooze`) or the page (`receipt`, `decline`).
    pub target: String,
    pub reason: String,
}

impl Command {
    /// A snooze of `minutes`, or why that length is refused.
    fn snooze(target: String, minutes: f64, reason: String) -> Result<Command, String> {
        let millis = vigil_engine::alert::snooze_millis(minutes)?;
        Ok(Command {
            kind: CommandKind::Snooze { millis },
            target,
            reason,
        })
    }
}

/// What a WebSocket client message asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Ping,
    Subscribe(Subscribe),
    Command(Command),
}

/// A client message that cannot be taken: the `id` it carried (if it could be read) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub id: Option<String>,
    pub message: String,
}

/// Every `type` of [`ClientMessage`], to tell a known type with a bad field from an unknown
/// type (`every_client_message_type_is_listed` keeps it equal to the enum).
const TYPES: [&str; 7] = [
    "ping",
    "subscribe",
    "ack",
    "resolve",
    "snooze",
    "receipt",
    "decline",
];

impl ClientMessage {
    /// Decodes one text frame. Valid messages are parsed once; only a refused one is read a
    /// second time, for its `id` and `type`.
    ///
    /// # Errors
    /// [`Refused`] naming what is wrong: not JSON, no or an unknown `type`, a missing or
    /// unknown field, a snooze outside 1 s to 24 h.
    pub fn decode(text: &str) -> Result<(Option<String>, Request), Refused> {
        let message = serde_json::from_str::<ClientMessage>(text).map_err(|e| refused(text, e))?;
        message.into_request()
    }

    fn into_request(self) -> Result<(Option<String>, Request), Refused> {
        let command = |kind, id, target, reason| {
            Ok((
                id,
                Request::Command(Command {
                    kind,
                    target,
                    reason,
                }),
            ))
        };
        match self {
            ClientMessage::Ping { id } => Ok((id, Request::Ping)),
            ClientMessage::Subscribe(m) => Ok((m.id.clone(), Request::Subscribe(m))),
            ClientMessage::Ack(m) => command(CommandKind::Ack, m.id, m.alert_id, m.reason),
            ClientMessage::Resolve(m) => command(CommandKind::Resolve, m.id, m.alert_id, m.reason),
            ClientMessage::Receipt(m) => command(CommandKind::Receipt, m.id, m.page_id, m.reason),
            ClientMessage::Decline(m) => command(CommandKind::Decline, m.id, m.page_id, m.reason),
            ClientMessage::Snooze(m) => match Command::snooze(m.alert_id, m.minutes, m.reason) {
                Ok(c) => Ok((m.id, Request::Command(c))),
                Err(message) => Err(Refused { id: m.id, message }),
            },
        }
    }
}

/// Why `text` did not decode as a client message, with the `id` it carried. Read again only
/// for a refusal, so that the answer can name it.
fn refused(text: &str, e: serde_json::Error) -> Refused {
    let value = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => {
            return Refused {
                id: None,
                message: "a message must be a JSON object with a `type`".into(),
            };
        }
        Err(_) => {
            return Refused {
                id: None,
                message: format!("not JSON: {e}"),
            };
        }
    };
    let id = value.get("id").and_then(|v| v.as_str()).map(str::to_string);
    let message = match value.get("type") {
        None => "missing `type`".to_string(),
        Some(serde_json::Value::String(t)) if TYPES.contains(&t.as_str()) => format!("{t}: {e}"),
        Some(serde_json::Value::String(t)) => format!("unknown message type `{t}`"),
        Some(_) => "`type` must be a string".to_string(),
    };
    Refused { id, message }
}

/// The JSON body of `POST /api/alerts/{alertId}/ack|resolve|snooze`: `{"reason": "..."}`,
/// optional for `ack` and `resolve` (an empty body is no reason); `{"minutes": 30, "reason":
/// "..."}` for `snooze`, where `minutes` is required.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandBody {
    #[serde(default, deserialize_with = "reason")]
    pub reason: Option<String>,
    #[serde(default, deserialize_with = "minutes")]
    pub minutes: Option<f64>,
}

/// The action of `POST /api/alerts/{alertId}/{action}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Ack,
    Resolve,
    Snooze,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Ack, Action::Resolve, Action::Snooze];

    /// The action a path segment names.
    ///
    /// # Errors
    /// A message naming the actions there are (the 400's text).
    pub fn parse(action: &str) -> Result<Action, String> {
        match action {
            "ack" => Ok(Action::Ack),
            "resolve" => Ok(Action::Resolve),
            "snooze" => Ok(Action::Snooze),
            other => Err(format!(
                "unknown action `{other}`; expected ack, resolve or snooze"
            )),
        }
    }
}

impl CommandBody {
    /// The command `action` on `alert_id` with this body (`body` as received).
    ///
    /// # Errors
    /// A message naming what is wrong with the body (the 400's text).
    pub fn command(action: Action, alert_id: &str, body: &[u8]) -> Result<Command, String> {
        let expected = match action {
            Action::Snooze => "{\"minutes\": 30, \"reason\": \"comfort care\"}",
            Action::Ack | Action::Resolve => "{\"reason\": \"at bedside\"}",
        };
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            CommandBody::default()
        } else {
            serde_json::from_slice::<CommandBody>(body).map_err(|e| {
                if e.is_syntax() || e.is_eof() {
                    format!("body is not JSON: {e}")
                } else {
                    format!("{e}; expected {expected}")
                }
            })?
        };
        let (target, reason) = (alert_id.to_string(), body.reason.unwrap_or_default());
        let kind = match (action, body.minutes) {
            (Action::Snooze, Some(minutes)) => return Command::snooze(target, minutes, reason),
            (Action::Snooze, None) => {
                return Err(format!("field `minutes` is required, e.g. {expected}"));
            }
            (_, Some(_)) => return Err(format!("unknown field `minutes`; expected {expected}")),
            (Action::Ack, None) => CommandKind::Ack,
            (Action::Resolve, None) => CommandKind::Resolve,
        };
        Ok(Command {
            kind,
            target,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// `TYPES` is exactly the enum's tags: serde names every variant it expects when a tag is
    /// unknown, and that list must be `TYPES`, in order.
    #[test]
    fn every_client_message_type_is_listed() {
        let e = serde_json::from_str::<ClientMessage>(r#"{"type":"no-such-type"}"#)
            .unwrap_err()
            .to_string();
        let expected = e
            .split("expected one of ")
            .nth(1)
            .unwrap_or_else(|| panic!("serde's message changed: {e}"));
        let tags: Vec<&str> = expected
            .split(", ")
            .map(|t| t.trim_matches(|c: char| c == '`' || c.is_ascii_whitespace()))
            .map(|t| t.split('`').next().unwrap())
            .collect();
        assert_eq!(tags, TYPES, "{e}");
    }

    fn refused(text: &str) -> Refused {
        ClientMessage::decode(text).unwrap_err()
    }

    #[test]
    fn every_message_of_the_contract_decodes_once_into_its_request() {
        let (id, r) = ClientMessage::decode(r#"{"type":"ping"}"#).unwrap();
        assert_eq!((id, r), (None, Request::Ping));
        let (id, r) = ClientMessage::decode(
            r#"{"type":"subscribe","id":"s1","channels":["alerts"],"units":["icu-3"],"minLevel":"warning"}"#,
        )
        .unwrap();
        assert_eq!(id.as_deref(), Some("s1"));
        let Request::Subscribe(s) = r else {
            panic!("subscribe")
        };
        assert_eq!(
            (s.units, s.min_level),
            (vec!["icu-3".to_string()], Some(Level::Warning))
        );
        let (id, r) = ClientMessage::decode(
            r#"{"type":"ack","id":"c1","alertId":"alert-1","reason":"at bedside"}"#,
        )
        .unwrap();
        assert_eq!(id.as_deref(), Some("c1"));
        assert_eq!(
            r,
            Request::Command(Command {
                kind: CommandKind::Ack,
                target: "alert-1".into(),
                reason: "at bedside".into()
            })
        );
        let (_, r) =
            ClientMessage::decode(r#"{"type":"snooze","alertId":"a","minutes":0.5}"#).unwrap();
        assert!(matches!(
            r,
            Request::Command(Command {
                kind: CommandKind::Snooze { millis: 30_000 },
                ..
            })
        ));
        let (id, r) =
            ClientMessage::decode(r#"{"type":"decline","pageId":"page-1","reason":"in theatre"}"#)
                .unwrap();
        assert_eq!(id, None, "the contract's decline carries no id");
        assert!(matches!(
            r,
            Request::Command(Command {
                kind: CommandKind::Decline,
                ..
            })
        ));
    }

    #[test]
    fn a_refused_message_says_why_and_keeps_its_id() {
        assert!(refused("{").message.starts_with("not JSON"));
        assert_eq!(
            refused("[1]").message,
            "a message must be a JSON object with a `type`"
        );
        let r = refused(r#"{"id":"x1"}"#);
        assert_eq!(
            (r.id.as_deref(), r.message.as_str()),
            (Some("x1"), "missing `type`")
        );
        assert_eq!(
            refused(r#"{"type":"dance"}"#).message,
            "unknown message type `dance`"
        );
        assert_eq!(refused(r#"{"type":7}"#).message, "`type` must be a string");
        let r = refused(r#"{"type":"ack","id":"c2"}"#);
        assert_eq!(r.id.as_deref(), Some("c2"));
        assert!(
            r.message.starts_with("ack: missing field `alertId`"),
            "{}",
            r.message
        );
        let r = refused(r#"{"type":"ack","alertId":"a","extra":1}"#);
        assert!(r.message.contains("unknown field `extra`"), "{}", r.message);
        let r = refused(r#"{"type":"snooze","id":"c3","alertId":"a","minutes":1441}"#);
        assert_eq!(r.id.as_deref(), Some("c3"));
        assert!(r.message.contains("`minutes`"), "{}", r.message);
    }

    #[test]
    fn http_bodies_become_the_same_commands() {
        let c = CommandBody::command(Action::Ack, "alert-1", b"").unwrap();
        assert_eq!(
            (c.kind, c.target.as_str(), c.reason.as_str()),
            (CommandKind::Ack, "alert-1", "")
        );
        let c = CommandBody::command(Action::Resolve, "a", br#"{"reason":"better"}"#).unwrap();
        assert_eq!(
            (c.kind, c.reason.as_str()),
            (CommandKind::Resolve, "better")
        );
        let c = CommandBody::command(Action::Snooze, "a", br#"{"minutes":30}"#).unwrap();
        assert_eq!(c.kind, CommandKind::Snooze { millis: 1_800_000 });
        let err = |action: &str, body: &[u8]| {
            Action::parse(action)
                .and_then(|a| CommandBody::command(a, "a", body))
                .unwrap_err()
        };
        assert!(err("snooze", b"{}").starts_with("field `minutes` is required"));
        assert!(err("ack", br#"{"minutes":5}"#).starts_with("unknown field `minutes`"));
        assert!(err("ack", br#"{"why":"x"}"#).contains("unknown field `why`"));
        assert!(err("ack", b"{").starts_with("body is not JSON"));
        assert!(err("ack", br#"{"reason":5}"#).starts_with("field `reason` must be a string"));
        assert!(
            err("snooze", br#"{"minutes":"x"}"#).starts_with("field `minutes` must be a number")
        );
        assert!(CommandBody::command(Action::Ack, "a", br#"{"reason":null}"#).is_ok());
        assert!(err("snooze", br#"{"minutes":0}"#).contains("`minutes`"));
        assert!(err("dance", b"").starts_with("unknown action `dance`"));
        assert_eq!(
            Action::ALL.map(|a| Action::parse(&format!("{a:?}").to_lowercase())),
            Action::ALL.map(Ok)
        );
    }
}
