//! The clonable handle through which every other task talks to a modem actor.
//!
//! Two bounded queues feed the actor: call control (`answer`, `hangup`, `clcc`, and the audio
//! routing commands of [`CallOp`] through `call_control`) goes into the
//! high-priority one, everything else into the normal one. The actor always drains the call queue
//! first, also between the parts of a multipart send, so a call arriving during a broadcast is served
//! after at most the one command in flight (chan_dongle does the same: it queues call commands right
//! after the running one). Each request carries a oneshot for its answer; a dropped actor turns into
//! [`SendError::ModemUnavailable`] / [`CommandError::ModemUnavailable`], never a hang.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::error::{CommandError, SendError};
use super::status::ModemStatus;
use super::ussd::{UssdAnswer, UssdError, UssdOp};

/// One part of an outgoing message: the PDU hex including the SMSC prefix (`00` for the modem's own
/// SMSC) and the TPDU length for `AT+CMGS=<tpdu_len>` (octets after the SMSC field, 3GPP TS 27.005
/// §3.5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingPart {
    pub hex: String,
    pub tpdu_len: usize,
}

/// Call-control operations (served before queued sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOp {
    /// `ATA`.
    Answer,
    /// `AT+CHUP`.
    Hangup,
    /// `AT+CLCC`: list current calls.
    Clcc,
    /// Huawei `AT^DDSETEX=2`: route the call's audio to the voice tty (after `^CONN`; docs/voice.md,
    /// "Which modems can do voice").
    HuaweiAudio,
    /// SIMCom `AT+CPCMREG=<0|1>`: USB PCM on/off (docs/voice.md, "Which modems can do voice").
    SimcomPcm(bool),
    /// Quectel `AT+QPCMV=0;+QPCMV=1,<port>` (before `ATA`), or `AT+QPCMV=0` for `None`
    /// (docs/voice.md, "Which modems can do voice"). Ports above 2 are refused by the `at` builder.
    QuectelPcm(Option<u8>),
}

impl CallOp {
    pub(crate) fn text(self) -> &'static str {
        match self {
            CallOp::Answer => "ATA",
            CallOp::Hangup => "AT+CHUP",
            CallOp::Clcc => "AT+CLCC",
            CallOp::HuaweiAudio => "AT^DDSETEX=2",
            CallOp::SimcomPcm(true) => "AT+CPCMREG=1",
            CallOp::SimcomPcm(false) => "AT+CPCMREG=0",
            CallOp::QuectelPcm(Some(_)) => "AT+QPCMV=0;+QPCMV=1,<port>",
            CallOp::QuectelPcm(None) => "AT+QPCMV=0",
        }
    }
}

pub(crate) type SendReply = oneshot::Sender<Result<Vec<u8>, SendError>>;
pub(crate) type CommandReply = oneshot::Sender<Result<Vec<String>, CommandError>>;

/// A request to the actor.
#[derive(Debug)]
pub(crate) enum Request {
    Send {
        parts: Vec<OutgoingPart>,
        reply: SendReply,
    },
    Command {
        text: String,
        timeout: Option<Duration>,
        reply: CommandReply,
    },
    Call {
        op: CallOp,
        reply: CommandReply,
    },
    /// A built command (with its answer contract and, for uploads, its body) from another layer:
    /// the voice layer's file upload and playback commands (docs/voice.md, "How the greeting plays
    /// from the modem's flash").
    Exec {
        cmd: crate::at::Command,
        reply: CommandReply,
    },
    /// A USSD operation (`modem::ussd`); answered when the `+CUSD` URC arrives.
    Ussd {
        op: UssdOp,
        timeout: Duration,
        reply: UssdReply,
    },
}

pub(crate) type UssdReply = oneshot::Sender<Result<UssdAnswer, UssdError>>;

/// A clonable handle to one modem actor.
#[derive(Debug, Clone)]
pub struct ModemHandle {
    pub(crate) name: Arc<str>,
    pub(crate) tx: mpsc::Sender<Request>,
    pub(crate) call_tx: mpsc::Sender<Request>,
    pub(crate) status: watch::Receiver<ModemStatus>,
}

impl ModemHandle {
    /// The modem's configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends the given parts back to back, one `AT+CMGS` each, and returns the TP-MR the modem used
    /// for each part, in order; queued call control is served before each part. The relay link is
    /// not kept open between parts (no `AT+CMMS=1`): the dispatcher calls this with one part at a
    /// time, so its rate limiter counts every part's own start, and a multipart message reaches the
    /// modem as separate requests.
    pub async fn send(&self, parts: Vec<OutgoingPart>) -> Result<Vec<u8>, SendError> {
        let (reply, rx) = oneshot::channel();
        let unavailable = || SendError::ModemUnavailable {
            modem: self.name.to_string(),
            reason: "modem actor has stopped".into(),
        };
        self.tx
            .send(Request::Send { parts, reply })
            .await
            .map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())?
    }

    /// Runs one raw AT command line (admin/doctor escape hatch) and returns its answer lines. The
    /// text must be a single line starting with `AT`; `timeout` overrides the plain-command timeout.
    pub async fn command(
        &self,
        text: &str,
        timeout: Option<Duration>,
    ) -> Result<Vec<String>, CommandError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Command {
                text: text.to_owned(),
                timeout,
                reply,
            })
            .await
            .map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())?
    }

    /// A USSD operation (3GPP TS 27.007 §7.15): sends a code or a menu reply and waits up to
    /// `timeout` for the network's `+CUSD` answer, or cancels the session. Queued behind sends
    /// like any request.
    pub async fn ussd(&self, op: UssdOp, timeout: Duration) -> Result<UssdAnswer, UssdError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Ussd { op, timeout, reply })
            .await
            .map_err(|_| UssdError::Command(self.gone()))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(UssdError::Command(self.gone())),
            Err(_) => Err(UssdError::Timeout { after: timeout }),
        }
    }

    /// Answers an incoming call (`ATA`), ahead of queued sends.
    pub async fn answer(&self) -> Result<Vec<String>, CommandError> {
        self.call(CallOp::Answer).await
    }

    /// Hangs up (`AT+CHUP`), ahead of queued sends.
    pub async fn hangup(&self) -> Result<Vec<String>, CommandError> {
        self.call(CallOp::Hangup).await
    }

    /// Lists current calls (`AT+CLCC`; the `+CLCC:` lines), ahead of queued sends.
    pub async fn clcc(&self) -> Result<Vec<String>, CommandError> {
        self.call(CallOp::Clcc).await
    }

    /// Runs any call-control operation (the voice layer's audio routing commands), ahead of queued
    /// sends like [`Self::answer`].
    pub async fn call_control(&self, op: CallOp) -> Result<Vec<String>, CommandError> {
        self.call(op).await
    }

    /// Runs a built [`crate::at::Command`] (its body written at the prompt, its information lines
    /// returned) on the normal queue, with its class timeout. For work that may wait behind
    /// queued sends, such as uploading the greeting to the modem's flash.
    pub async fn exec(&self, cmd: crate::at::Command) -> Result<Vec<String>, CommandError> {
        self.exec_on(&self.tx, cmd).await
    }

    /// [`Self::exec`] on the call queue, ahead of queued sends (playback during a call).
    pub async fn exec_call(&self, cmd: crate::at::Command) -> Result<Vec<String>, CommandError> {
        self.exec_on(&self.call_tx, cmd).await
    }

    async fn exec_on(
        &self,
        queue: &mpsc::Sender<Request>,
        cmd: crate::at::Command,
    ) -> Result<Vec<String>, CommandError> {
        let (reply, rx) = oneshot::channel();
        queue
            .send(Request::Exec { cmd, reply })
            .await
            .map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())?
    }

    async fn call(&self, op: CallOp) -> Result<Vec<String>, CommandError> {
        let (reply, rx) = oneshot::channel();
        self.call_tx
            .send(Request::Call { op, reply })
            .await
            .map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())?
    }

    /// The latest status snapshot.
    pub fn status(&self) -> ModemStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn watch_status(&self) -> watch::Receiver<ModemStatus> {
        self.status.clone()
    }

    fn gone(&self) -> CommandError {
        CommandError::ModemUnavailable {
            modem: self.name.to_string(),
            reason: "modem actor has stopped".into(),
        }
    }
}
