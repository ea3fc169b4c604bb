//! One example of every command, used by tests to prove that what the client serializes the
//! server decodes to the same value (and by the docs' examples). Add the example of a new command
//! here.

use super::*;

impl Request {
    /// The `cmd` string of this request.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Ping(_) => "ping",
            Request::Version(_) => "version",
            Request::Status(_) => "status",
            Request::Modems(_) => "modems",
            Request::Send(_) => "send",
            Request::Inbox(_) => "inbox",
            Request::Conversation(_) => "conversation",
            Request::Watch(_) => "watch",
            Request::MembersList(_) => "members_list",
            Request::MembersAdd(_) => "members_add",
            Request::MembersRemove(_) => "members_remove",
            Request::MembersTag(_) => "members_tag",
            Request::MembersImport(_) => "members_import",
            Request::MembersExport(_) => "members_export",
            Request::MembersReview(_) => "members_review",
            Request::MembersReviewResolve(_) => "members_review_resolve",
            Request::Broadcast(_) => "broadcast",
            Request::Broadcasts(_) => "broadcasts",
            Request::BroadcastProgress(_) => "broadcast_progress",
            Request::BroadcastPause(_) => "broadcast_pause",
            Request::BroadcastResume(_) => "broadcast_resume",
            Request::BroadcastCancel(_) => "broadcast_cancel",
            Request::InDoubt(_) => "in_doubt",
            Request::InDoubtResolve(_) => "in_doubt_resolve",
            Request::Calls(_) => "calls",
            Request::VoicemailList(_) => "voicemail_list",
            Request::VoicemailExport(_) => "voicemail_export",
            Request::VoicemailDelete(_) => "voicemail_delete",
            Request::GreetingSet(_) => "greeting_set",
            Request::MessageGet(_) => "message_get",
            Request::Conversations(_) => "conversations",
            Request::MembersGet(_) => "members_get",
            Request::MembersUpdate(_) => "members_update",
            Request::TokensCreate(_) => "tokens_create",
            Request::TokensList(_) => "tokens_list",
            Request::TokensRevoke(_) => "tokens_revoke",
            Request::Ussd(_) => "ussd",
            Request::Webhooks(_) => "webhooks",
            Request::WebhookReplay(_) => "webhook_replay",
            Request::GreetingGet(_) => "greeting_get",
            Request::WebUsersAdd(_) => "web_users_add",
            Request::WebUsersList(_) => "web_users_list",
            Request::WebUsersPasswd(_) => "web_users_passwd",
            Request::WebUsersRemove(_) => "web_users_remove",
            Request::Activity(_) => "activity",
        }
    }

    /// One example of every command, used by tests to prove that what the client serializes the
    /// server decodes to the same value. Add the example of a new command here.
    pub fn examples() -> Vec<Request> {
        vec![
            Request::Ping(NoArgs {}),
            Request::Version(NoArgs {}),
            Request::Status(NoArgs {}),
            Request::Modems(NoArgs {}),
            Request::Send(SendArgs {
                to: "+15551234567".into(),
                text: "hi there".into(),
                modem: Some("modem0".into()),
            }),
            Request::Send(SendArgs {
                to: "+15551234567".into(),
                text: "no modem chosen".into(),
                modem: None,
            }),
            Request::Inbox(InboxArgs {
                unread_only: true,
                limit: Some(20),
                since: None,
            }),
            Request::Inbox(InboxArgs {
                unread_only: false,
                limit: Some(100),
                since: Some(41),
            }),
            Request::Inbox(InboxArgs::default()),
            Request::Conversation(ConversationArgs {
                number: "+15551234567".into(),
                limit: Some(5),
            }),
            Request::Watch(WatchArgs {
                events: Some(vec![EventKind::MessageIn, EventKind::ModemState]),
            }),
            Request::Watch(WatchArgs::default()),
            Request::MembersList(MembersListArgs {
                segment: Some("city=Chicago,tag=volunteer,joined>=2026-01-01".into()),
                limit: Some(50),
                offset: Some(100),
            }),
            Request::MembersList(MembersListArgs::default()),
            Request::MembersAdd(MemberAddArgs {
                number: "(312) 555-0101".into(),
                name: Some("Ana Lopez".into()),
                city: Some("Chicago".into()),
                region: Some("60601".into()),
                tags: vec!["volunteer".into(), "block-captain".into()],
                time_zone: Some("America/Chicago".into()),
            }),
            Request::MembersAdd(MemberAddArgs {
                number: "+13125550102".into(),
                ..MemberAddArgs::default()
            }),
            Request::MembersRemove(MemberRemoveArgs {
                number: "+13125550101".into(),
            }),
            Request::MembersTag(MemberTagArgs {
                number: "+13125550101".into(),
                tags: vec!["driver".into()],
                remove: true,
            }),
            Request::MembersTag(MemberTagArgs {
                number: "+13125550101".into(),
                tags: vec!["driver".into(), "cook".into()],
                remove: false,
            }),
            Request::MembersImport(MembersImportArgs {
                csv: "number,name\r\n+13125550101,\"Lopez, Ana\"\r\n".into(),
                dry_run: true,
            }),
            Request::MembersExport(MembersExportArgs {
                segment: Some("tag=volunteer".into()),
                ..MembersExportArgs::default()
            }),
            Request::MembersExport(MembersExportArgs {
                limit: Some(5000),
                after: Some("1772470800000.42".into()),
                ..MembersExportArgs::default()
            }),
            Request::MembersExport(MembersExportArgs::default()),
            Request::Broadcast(BroadcastArgs {
                text: "Hi {first_name}, meeting at 7 \u{1F600}".into(),
                segment: Some("city=\"Washington, DC\"".into()),
                at: Some("2026-03-01T18:00:00Z".into()),
                dry_run: true,
                ..BroadcastArgs::default()
            }),
            Request::Broadcast(BroadcastArgs {
                text: "Rally tomorrow".into(),
                segment: None,
                at: None,
                dry_run: false,
                ..BroadcastArgs::default()
            }),
            Request::Broadcasts(BroadcastsArgs { limit: Some(5) }),
            Request::Broadcasts(BroadcastsArgs::default()),
            Request::BroadcastProgress(BroadcastIdArgs { broadcast: 3 }),
            Request::BroadcastPause(BroadcastIdArgs { broadcast: 3 }),
            Request::BroadcastResume(BroadcastIdArgs { broadcast: 3 }),
            Request::BroadcastCancel(BroadcastIdArgs { broadcast: 3 }),
            Request::MembersReview(NoArgs {}),
            Request::MembersReviewResolve(ReviewResolveArgs {
                number: "+15551234567".into(),
                action: ReviewAction::OptOut,
            }),
            Request::MembersReviewResolve(ReviewResolveArgs {
                number: "+15551234567".into(),
                action: ReviewAction::Keep,
            }),
            Request::InDoubt(NoArgs {}),
            Request::InDoubtResolve(InDoubtResolveArgs {
                message: 42,
                action: InDoubtResolution::Resend,
            }),
            Request::InDoubtResolve(InDoubtResolveArgs {
                message: 43,
                action: InDoubtResolution::Drop,
            }),
            Request::Webhooks(NoArgs {}),
            Request::WebhookReplay(WebhookReplayArgs {
                name: "crm".into(),
                event: 17,
            }),
            Request::Calls(CallsArgs { limit: Some(10) }),
            Request::Calls(CallsArgs::default()),
            Request::VoicemailList(VoicemailListArgs { unheard_only: true }),
            Request::VoicemailList(VoicemailListArgs::default()),
            Request::VoicemailExport(VoicemailIdArgs { voicemail: 4 }),
            Request::VoicemailDelete(VoicemailIdArgs { voicemail: 4 }),
            Request::GreetingSet(GreetingSetArgs {
                wav_base64: base64::encode(b"RIFF....WAVE"),
                offset: None,
                total_bytes: None,
            }),
            Request::GreetingSet(GreetingSetArgs {
                wav_base64: base64::encode(b"more"),
                offset: Some(46080),
                total_bytes: Some(160_044),
            }),
            Request::MessageGet(MessageIdArgs { message: 7 }),
            Request::Conversations(ConversationsArgs { limit: Some(20) }),
            Request::Conversations(ConversationsArgs::default()),
            Request::MembersGet(MemberGetArgs {
                number: "+15551234567".into(),
            }),
            Request::MembersUpdate(MemberUpdateArgs {
                number: "+15551234567".into(),
                city: Some("Chicago".into()),
                tags: Some(vec!["a".into()]),
                ..Default::default()
            }),
            Request::TokensCreate(TokensCreateArgs {
                name: "crm".into(),
                scope: Scope::Send,
            }),
            Request::TokensList(NoArgs {}),
            Request::TokensRevoke(TokensRevokeArgs { name: "crm".into() }),
            Request::GreetingGet(NoArgs {}),
            Request::WebUsersAdd(WebUserAddArgs {
                name: "ann".into(),
                role: WebRole::Volunteer,
                password: "correct horse".into(),
            }),
            Request::WebUsersList(NoArgs {}),
            Request::WebUsersPasswd(WebUserPasswdArgs {
                name: "ann".into(),
                password: "battery staple".into(),
            }),
            Request::WebUsersRemove(WebUserNameArgs { name: "ann".into() }),
            Request::Activity(ActivityArgs::default()),
            Request::Activity(ActivityArgs {
                days: Some(30),
                alerts: Some(0),
            }),
            Request::Ussd(UssdArgs {
                modem: "sim0".into(),
                code: Some("*100#".into()),
                ..Default::default()
            }),
            Request::Ussd(UssdArgs {
                modem: "sim0".into(),
                reply: Some("2".into()),
                timeout_s: Some(60),
                ..Default::default()
            }),
            Request::Ussd(UssdArgs {
                modem: "sim0".into(),
                cancel: true,
                ..Default::default()
            }),
        ]
    }
}
