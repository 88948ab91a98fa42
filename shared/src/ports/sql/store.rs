//! Every [`SqlBackend`] is a [`Store`]: each method runs the shared SQL of its aggregate
//! ([`catalogue`](super::catalogue), [`events`](super::events), [`record`](super::record),
//! [`keys`](super::keys), [`state`](super::state), [`alerts`](super::alerts),
//! [`workflow`](super::workflow)).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use super::{DbRow, Sql, SqlBackend};
use crate::domain::{
    Alert, ApiKey, AttemptOutcome, Company, CompanyInput, DesiredEntry, EventChangeRecord,
    EventPage, EventQuery, EventUpdate, Exchange, Feedback, FeedbackLabel, FetchReport,
    HealthChange, ListedToken, MarketListing, MarketsSeen, MemoryEntry, NewAlert, OutboxItem,
    RecordOutcome, Source, SourceInput, Subscription, SubscriptionInput, SupervisorAction,
    SupervisorActionInput, SupervisorActionQuery, SynthesisSnapshot, TgeEvent,
};
use crate::error::Result;
use crate::ports::{Store, ToRecord};

#[async_trait]
impl<B> Store for B
where
    B: SqlBackend,
    // What the SQL needs of the database, restated on every block (see `Sql`).
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> i32: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> f64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> bool: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db>,
    for<'q> Option<f64>: Encode<'q, B::Db>,
    for<'q> Option<String>: Encode<'q, B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db>,
    for<'q> &'q str: ColumnIndex<DbRow<B>>,
    usize: ColumnIndex<DbRow<B>>,
{
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(self.reader()).await?;
        Ok(())
    }

    async fn close(&self) {
        self.reader().close().await;
        self.writer().close().await;
    }

    async fn list_sources(&self) -> Result<Vec<Source>> {
        Sql(self).list_sources().await
    }

    async fn get_source(&self, id: i64) -> Result<Source> {
        Sql(self).get_source(id).await
    }

    async fn create_source(&self, input: &SourceInput) -> Result<Source> {
        Sql(self).create_source(input).await
    }

    async fn update_source(&self, id: i64, input: &SourceInput) -> Result<Source> {
        Sql(self).update_source(id, input).await
    }

    async fn delete_source(&self, id: i64) -> Result<()> {
        Sql(self).delete_source(id).await
    }

    async fn record_fetch(&self, id: i64, report: &FetchReport) -> Result<()> {
        Sql(self).record_fetch(id, report).await
    }

    async fn market_changes(
        &self,
        exchange: Exchange,
        listings: &[MarketListing],
    ) -> Result<MarketsSeen> {
        Sql(self).market_changes(exchange, listings).await
    }

    async fn record_markets(
        &self,
        exchange: Exchange,
        listings: &[MarketListing],
        at: DateTime<Utc>,
    ) -> Result<()> {
        Sql(self).record_markets(exchange, listings, at).await
    }

    async fn listed_tokens(&self, seen_before: DateTime<Utc>) -> Result<Vec<ListedToken>> {
        Sql(self).listed_tokens(seen_before).await
    }

    async fn list_companies(&self) -> Result<Vec<Company>> {
        Sql(self).list_companies().await
    }

    async fn get_company(&self, id: i64) -> Result<Company> {
        Sql(self).get_company(id).await
    }

    async fn create_company(&self, input: &CompanyInput) -> Result<Company> {
        Sql(self).create_company(input).await
    }

    async fn update_company(&self, id: i64, input: &CompanyInput) -> Result<Company> {
        Sql(self).update_company(id, input).await
    }

    async fn delete_company(&self, id: i64) -> Result<()> {
        Sql(self).delete_company(id).await
    }

    async fn record_classified_batch(
        &self,
        batch: &[ToRecord<'_>],
        merge_window: Duration,
    ) -> Result<Vec<RecordOutcome>> {
        Sql(self).record_classified_batch(batch, merge_window).await
    }

    async fn list_events(&self, query: &EventQuery) -> Result<EventPage> {
        Sql(self).list_events(query).await
    }

    async fn explain_events(&self, query: &EventQuery) -> Result<Vec<String>> {
        Sql(self).explain_events(query).await
    }

    async fn update_events(
        &self,
        ids: &[i64],
        update: &EventUpdate,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<i64>> {
        Sql(self).update_events(ids, update, actor, at).await
    }

    async fn event_history(&self, event_id: i64) -> Result<Vec<EventChangeRecord>> {
        Sql(self).event_history(event_id).await
    }

    async fn record_source_health(
        &self,
        source_id: i64,
        change: &HealthChange,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        Sql(self).record_source_health(source_id, change, at).await
    }

    async fn get_event(&self, id: i64) -> Result<TgeEvent> {
        Sql(self).get_event(id).await
    }

    async fn count_documents(&self) -> Result<u64> {
        Sql(self).count_documents().await
    }

    async fn prune_documents(&self, before: DateTime<Utc>, batch: usize) -> Result<u64> {
        Sql(self).prune_documents(before, batch).await
    }

    async fn prune_fingerprints(&self, before: DateTime<Utc>, batch: usize) -> Result<u64> {
        Sql(self).prune_fingerprints(before, batch).await
    }

    async fn insert_api_key(&self, name: &str, hash: &str, scopes: &[String]) -> Result<i64> {
        Sql(self).insert_api_key(name, hash, scopes).await
    }

    async fn replace_api_key(&self, name: &str, hash: &str, scopes: &[String]) -> Result<i64> {
        Sql(self).replace_api_key(name, hash, scopes).await
    }

    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        Sql(self).find_api_key(hash).await
    }

    async fn count_api_keys(&self) -> Result<u64> {
        Sql(self).count_api_keys().await
    }

    async fn create_api_key(
        &self,
        name: &str,
        hash: &str,
        scopes: &[String],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<ApiKey> {
        Sql(self)
            .create_api_key(name, hash, scopes, expires_at)
            .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        Sql(self).list_api_keys().await
    }

    async fn revoke_api_key(&self, id: i64, at: DateTime<Utc>) -> Result<ApiKey> {
        Sql(self).revoke_api_key(id, at).await
    }

    async fn rotate_api_key(&self, id: i64, new_hash: &str, at: DateTime<Utc>) -> Result<ApiKey> {
        Sql(self).rotate_api_key(id, new_hash, at).await
    }

    async fn touch_api_key(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        Sql(self).touch_api_key(id, at).await
    }

    async fn claim_once(&self, key: &str) -> Result<bool> {
        Sql(self).claim_once(key).await
    }

    async fn write_memory(&self, puts: &[MemoryEntry], deletes: &[(String, String)]) -> Result<()> {
        Sql(self).write_memory(puts, deletes).await
    }

    async fn load_memory(&self, now: DateTime<Utc>) -> Result<Vec<MemoryEntry>> {
        Sql(self).load_memory(now).await
    }

    async fn put_desired(&self, key: &str, value: &serde_json::Value) -> Result<DesiredEntry> {
        Sql(self).put_desired(key, value).await
    }

    async fn list_desired(&self) -> Result<Vec<DesiredEntry>> {
        Sql(self).list_desired().await
    }

    async fn add_feedback(
        &self,
        event_id: i64,
        label: FeedbackLabel,
        note: Option<&str>,
        sample: &serde_json::Value,
    ) -> Result<Feedback> {
        Sql(self).add_feedback(event_id, label, note, sample).await
    }

    async fn list_feedback(&self) -> Result<Vec<Feedback>> {
        Sql(self).list_feedback().await
    }

    async fn record_supervisor_action(&self, input: &SupervisorActionInput) -> Result<i64> {
        Sql(self).record_supervisor_action(input).await
    }

    async fn list_supervisor_actions(
        &self,
        query: &SupervisorActionQuery,
    ) -> Result<Vec<SupervisorAction>> {
        Sql(self).list_supervisor_actions(query).await
    }

    async fn save_snapshot(&self, at: DateTime<Utc>, body: &serde_json::Value) -> Result<i64> {
        Sql(self).save_snapshot(at, body).await
    }

    async fn latest_snapshot(&self) -> Result<Option<SynthesisSnapshot>> {
        Sql(self).latest_snapshot().await
    }

    async fn create_subscription(&self, input: &SubscriptionInput) -> Result<Subscription> {
        Sql(self).create_subscription(input).await
    }

    async fn list_subscriptions(&self) -> Result<Vec<Subscription>> {
        Sql(self).list_subscriptions().await
    }

    async fn get_subscription(&self, id: i64) -> Result<Subscription> {
        Sql(self).get_subscription(id).await
    }

    async fn delete_subscription(&self, id: i64) -> Result<()> {
        Sql(self).delete_subscription(id).await
    }

    async fn waiting_outbox(&self, limit: u32) -> Result<Vec<OutboxItem>> {
        Sql(self).waiting_outbox(limit).await
    }

    async fn outbox_after(&self, after: i64, limit: u32) -> Result<Vec<OutboxItem>> {
        Sql(self).outbox_after(after, limit).await
    }

    async fn latest_outbox_row(&self) -> Result<i64> {
        Sql(self).latest_outbox_row().await
    }

    async fn fan_out(
        &self,
        outbox_ids: &[i64],
        alerts: &[NewAlert],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        Sql(self).fan_out(outbox_ids, alerts, now).await
    }

    async fn last_alert_at(
        &self,
        subscription_id: i64,
        event_id: i64,
    ) -> Result<Option<DateTime<Utc>>> {
        Sql(self).last_alert_at(subscription_id, event_id).await
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Alert>> {
        Sql(self).claim_deliveries(now, lease_until, limit).await
    }

    async fn finish_delivery(
        &self,
        id: i64,
        outcome: &AttemptOutcome,
        at: DateTime<Utc>,
    ) -> Result<()> {
        Sql(self).finish_delivery(id, outcome, at).await
    }

    async fn list_deliveries(&self, subscription_id: i64, limit: u32) -> Result<Vec<Alert>> {
        Sql(self).list_deliveries(subscription_id, limit).await
    }
}
