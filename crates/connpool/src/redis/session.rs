//! What a command leaves behind on its connection for the next caller.
//!
//! A pooled connection outlives its checkout, so session state one caller sets would
//! reach the next. Every command's name is looked at before anything is sent:
//!
//! * **Refused** (an `ErrorKind::Client` error, nothing sent): commands after which
//!   the server sends what nobody asked for or stops answering, so that replies would
//!   no longer match their commands: `SUBSCRIBE`, `PSUBSCRIBE`, `SSUBSCRIBE` and
//!   `MONITOR` over RESP2, `CLIENT REPLY`, and `HELLO` (it changes the protocol the
//!   connection was opened with).
//! * **Session changed** (the connection is closed when it comes back instead of
//!   being reused): `SELECT` of a database other than the manager's, `AUTH`, `RESET`,
//!   `READONLY` / `READWRITE`, the `CLIENT` settings (`SETNAME`, `SETINFO`,
//!   `TRACKING`, `CACHING`, `NO-EVICT`, `NO-TOUCH`), and over RESP3 `SUBSCRIBE`,
//!   `PSUBSCRIBE`, `SSUBSCRIBE` and `MONITOR` (the server keeps pushing to the
//!   connection; an `UNSUBSCRIBE` does not make it trusted again).
//! * **Transactions**: `MULTI` opens one and `EXEC` / `DISCARD` end it; `WATCH` holds
//!   keys until `EXEC`, `DISCARD` or `UNWATCH`. A connection that comes back inside
//!   either is closed: the next caller's commands would be queued, or its transaction
//!   aborted by someone else's watch.
//!
//! Effects are recorded when a command is sent, whether or not it succeeds: a
//! connection is closed rather than trusted when in doubt.

use redis::{Arg, Cmd, ErrorKind, RedisResult};

/// The session state of one pooled connection, as far as its commands tell.
#[derive(Debug, Clone, Copy)]
pub(super) struct Session {
    /// The database the connection was opened on.
    db: i64,
    /// RESP2: the commands that make the server push are refused.
    resp2: bool,
    changed: bool,
    in_multi: bool,
    watching: bool,
}

impl Session {
    pub(super) fn new(db: i64, resp2: bool) -> Self {
        Session { db, resp2, changed: false, in_multi: false, watching: false }
    }

    /// Whether the connection must not be handed to another caller.
    pub(super) fn is_dirty(&self) -> bool {
        self.changed || self.in_multi || self.watching
    }

    /// Checks `commands` (one command, or a pipeline's in order) before they are sent,
    /// in one pass: a refusal fails them all with nothing recorded; otherwise their
    /// effects are recorded.
    pub(super) fn admit<'a>(
        &mut self,
        commands: impl IntoIterator<Item = &'a Cmd>,
    ) -> RedisResult<()> {
        let mut after = *self;
        for cmd in commands {
            let (name, sub) = name_and_sub(cmd);
            self.refusal(name, sub)?;
            after.record(name, sub);
        }
        *self = after;
        Ok(())
    }

    /// Checks an atomic pipeline, which the redis crate wraps in `MULTI` ... `EXEC`:
    /// its `EXEC` ends any transaction and watch.
    pub(super) fn admit_transaction<'a>(
        &mut self,
        commands: impl IntoIterator<Item = &'a Cmd>,
    ) -> RedisResult<()> {
        self.admit(commands)?;
        self.in_multi = false;
        self.watching = false;
        Ok(())
    }

    fn refusal(&self, name: &[u8], sub: Option<&[u8]>) -> RedisResult<()> {
        let is = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());
        let why = if self.resp2
            && (is("SUBSCRIBE") || is("PSUBSCRIBE") || is("SSUBSCRIBE") || is("MONITOR"))
        {
            "a pooled Redis connection does not take commands that make the server push \
             messages; use redis::Client::get_async_pubsub (or RedisManager::multiplexed \
             with RESP3 and a push sender)"
        } else if is("HELLO") {
            "a pooled Redis connection keeps the protocol it was opened with; set it in the \
             URL (protocol=resp3) instead of sending HELLO"
        } else if is("CLIENT") && sub.is_some_and(|s| s.eq_ignore_ascii_case(b"REPLY")) {
            "a pooled Redis connection needs a reply to every command; CLIENT REPLY would \
             make the replies of later commands go astray"
        } else {
            return Ok(());
        };
        let shown = String::from_utf8_lossy(name).to_ascii_uppercase();
        Err((ErrorKind::Client, why, shown).into())
    }

    fn record(&mut self, name: &[u8], sub: Option<&[u8]>) {
        // Most commands are none of these: their lengths rule them out at once.
        if !matches!(name.len(), 4..=10) {
            return;
        }
        let is = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());
        if is("MULTI") {
            self.in_multi = true;
        } else if is("EXEC") || is("DISCARD") {
            self.in_multi = false;
            self.watching = false;
        } else if is("WATCH") {
            self.watching = true;
        } else if is("UNWATCH") {
            self.watching = false;
        } else if is("SELECT") {
            let same = sub
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| s.trim().parse::<i64>().ok())
                == Some(self.db);
            self.changed |= !same;
        } else if is("AUTH") || is("RESET") || is("READONLY") || is("READWRITE") {
            self.changed = true;
        } else if is("SUBSCRIBE") || is("PSUBSCRIBE") || is("SSUBSCRIBE") || is("MONITOR") {
            // Admitted over RESP3 only: the server goes on pushing to this connection
            // for as long as it lives, whoever holds it next.
            self.changed = true;
        } else if is("CLIENT") {
            const SETTINGS: [&str; 6] =
                ["SETNAME", "SETINFO", "TRACKING", "CACHING", "NO-EVICT", "NO-TOUCH"];
            self.changed |= sub.is_some_and(|s| {
                SETTINGS.iter().any(|setting| s.eq_ignore_ascii_case(setting.as_bytes()))
            });
        }
    }
}

/// A command's name and its first argument (a subcommand, or `SELECT`'s database).
fn name_and_sub(cmd: &Cmd) -> (&[u8], Option<&[u8]>) {
    let mut args = cmd.args_iter().map(|arg| match arg {
        Arg::Simple(bytes) => bytes,
        _ => &[][..],
    });
    (args.next().unwrap_or_default(), args.next())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit(session: &mut Session, words: &[&str]) -> RedisResult<()> {
        session.admit([&*redis::cmd(words[0]).arg(&words[1..])])
    }

    #[test]
    fn transactions_and_watches_open_and_close() {
        let mut s = Session::new(0, true);
        admit(&mut s, &["multi"]).unwrap();
        assert!(s.is_dirty());
        admit(&mut s, &["EXEC"]).unwrap();
        assert!(!s.is_dirty());
        admit(&mut s, &["WATCH", "k"]).unwrap();
        assert!(s.is_dirty());
        admit(&mut s, &["UNWATCH"]).unwrap();
        assert!(!s.is_dirty());
        admit(&mut s, &["WATCH", "k"]).unwrap();
        admit(&mut s, &["MULTI"]).unwrap();
        admit(&mut s, &["DISCARD"]).unwrap();
        assert!(!s.is_dirty(), "DISCARD ends the watch too");
    }

    #[test]
    fn select_of_another_database_and_client_settings_change_the_session() {
        let mut s = Session::new(3, true);
        admit(&mut s, &["SELECT", "3"]).unwrap();
        admit(&mut s, &["CLIENT", "ID"]).unwrap();
        admit(&mut s, &["GET", "k"]).unwrap();
        assert!(!s.is_dirty());
        admit(&mut s, &["select", "4"]).unwrap();
        assert!(s.is_dirty());
        for words in [&["AUTH", "pw"][..], &["RESET"], &["client", "setname", "x"], &["READONLY"]] {
            let mut s = Session::new(0, true);
            admit(&mut s, words).unwrap();
            assert!(s.is_dirty(), "{words:?}");
        }
    }

    #[test]
    fn refusals_record_nothing_and_fail_the_whole_pipeline() {
        let mut s = Session::new(0, true);
        let mut pipe = redis::pipe();
        pipe.cmd("MULTI").cmd("CLIENT").arg("REPLY").arg("OFF");
        let err = s.admit(pipe.cmd_iter()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Client);
        assert!(!s.is_dirty(), "nothing of a refused pipeline is recorded");
        for words in [&["HELLO", "3"][..], &["subscribe", "c"], &["MONITOR"]] {
            assert!(admit(&mut s, words).is_err(), "{words:?}");
        }
        // An atomic pipeline ends with EXEC: the watch before it is over.
        let mut s = Session::new(0, true);
        admit(&mut s, &["WATCH", "k"]).unwrap();
        let mut atomic = redis::pipe();
        atomic.atomic().cmd("INCR").arg("k");
        s.admit_transaction(atomic.cmd_iter()).unwrap();
        assert!(!s.is_dirty());
        // Over RESP3 subscribing is admitted (pushes are not replies), and closes the
        // connection on return: the server keeps pushing to it.
        for words in
            [&["SUBSCRIBE", "c"][..], &["psubscribe", "c*"], &["SSUBSCRIBE", "c"], &["MONITOR"]]
        {
            let mut s = Session::new(0, false);
            admit(&mut s, words).unwrap();
            assert!(s.is_dirty(), "{words:?}");
            assert!(admit(&mut s, &["HELLO", "2"]).is_err());
        }
    }
}
