/*
 * store_pg_schema - the PostgreSQL engine's tables, versioned: the meta
 * table's "schema" row says how many of the migrations below a database has
 * had, and store_open applies the rest. All of it happens in one transaction
 * under an advisory lock, so that front ends and workers starting together on
 * a new database create it once, one after the other, and a failure leaves
 * the database as it was.
 *
 * The tables are those of the SQLite engine's schema 3 (statuses by name,
 * timestamps in the callers' milliseconds), in the first schema of the
 * connection's search_path: a database of its own, or a schema chosen with
 * options=-csearch_path%3DNAME in the URL, keeps them apart from other
 * programs' tables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/store_pg_private.h"

/* Taken by nothing but gesso's migrations: "gesso" in ASCII, as a number. */
#define MIGRATION_LOCK 0x676573736fLL

/* Migration i brings a database from schema i to i + 1; new ones go at the
   end, and none is ever changed once released. */
static const char *const migrations[] = {
    /* 1: jobs and workers; the queue's partial indexes hold only what a claim
       or the reaper looks at, so they stay small however many jobs have
       finished. notify_channel is where change notifications will go (one
       name per database, kept here so that an operator can give gesso
       installations that share a database their own). */
    "CREATE TABLE jobs ("
    " seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " id text NOT NULL UNIQUE,"
    " owner text NOT NULL DEFAULT '',"
    " model text NOT NULL DEFAULT '',"
    " priority integer NOT NULL DEFAULT 0,"
    " status text NOT NULL"
    "  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),"
    " attempts integer NOT NULL DEFAULT 0,"
    " cancel_requested integer NOT NULL DEFAULT 0,"
    " worker text,"
    " lease_expires_ms bigint,"
    " step integer NOT NULL DEFAULT 0,"
    " steps integer NOT NULL DEFAULT 0,"
    " megapixelsteps double precision NOT NULL DEFAULT 0,"
    " params text NOT NULL,"
    " result text,"
    " error text,"
    " created_ms bigint NOT NULL,"
    " started_ms bigint,"
    " finished_ms bigint,"
    " preview_step integer NOT NULL DEFAULT 0,"
    " eta_s double precision NOT NULL DEFAULT -1) WITH (fillfactor = 80);"
    "CREATE INDEX jobs_queue ON jobs (priority DESC, seq) WHERE status = 'queued';"
    "CREATE INDEX jobs_queue_model ON jobs (model, priority DESC, seq) WHERE status = 'queued';"
    "CREATE INDEX jobs_running ON jobs (worker) WHERE status = 'running';"
    "CREATE INDEX jobs_active_owner ON jobs (owner) WHERE status IN ('queued', 'running');"
    "CREATE INDEX jobs_finished ON jobs (finished_ms)"
    " WHERE status IN ('succeeded', 'failed', 'cancelled');"
    "CREATE TABLE workers ("
    " name text PRIMARY KEY,"
    " models text NOT NULL DEFAULT '[]',"
    " pid integer NOT NULL DEFAULT 0,"
    " seen_ms bigint NOT NULL);"
    "INSERT INTO meta (key, value) VALUES ('notify_channel', 'gesso_jobs');",
    /* 2: change notifications (store_pg_notify.c): every insert or update of
       a job notifies, in the same transaction, so no writer can forget to.
       'q' when its status changed (the queue's order moved), 'j' otherwise;
       and "_queued" when a job became queued, for idle workers. */
    "CREATE OR REPLACE FUNCTION gesso_job_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
    " DECLARE ch text := (SELECT value FROM meta WHERE key = 'notify_channel');"
    " BEGIN"
    "  IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN"
    "   PERFORM pg_notify(ch, 'q' || NEW.id);"
    "   IF NEW.status = 'queued' THEN PERFORM pg_notify(ch || '_queued', ''); END IF;"
    "  ELSE"
    "   PERFORM pg_notify(ch, 'j' || NEW.id);"
    "  END IF;"
    "  RETURN NULL;"
    " END $$;"
    "CREATE TRIGGER jobs_changed AFTER INSERT OR UPDATE ON jobs"
    " FOR EACH ROW EXECUTE FUNCTION gesso_job_changed();",
    /* 3: blobs (blob_pg.c): a job's inputs, result images and preview, so a
       worker on another machine needs the database and nothing else. PNG and
       JPEG do not compress: stored out of line without trying (EXTERNAL).
       No key to jobs: inputs are put before their job's row exists. */
    "CREATE TABLE blobs ("
    " job_id text NOT NULL,"
    " kind smallint NOT NULL,"
    " idx smallint NOT NULL,"
    " put_ms bigint NOT NULL,"
    " data bytea NOT NULL,"
    " PRIMARY KEY (job_id, kind, idx));"
    "ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;",
    /* 4: what a worker says of itself besides its loaded models (host,
       state, job, the models it has, speed: GET /v1/workers) */
    "ALTER TABLE workers ADD COLUMN info text NOT NULL DEFAULT '{}';",
    /* 5: notifications on status changes, and progress rate-limited per job.
       A notifying commit takes a database-wide lock until it ends (the
       notification queue's order is the commits'), so every progress write
       notifying made claims wait behind the fleet's heartbeats (bench/RESULTS.md
       section 23). Now: a status change always notifies; a job's first step,
       its last, and a cancel request too; other progress at most every 250
       ms of the database's clock (notified_ms), which readers fill in (an
       event stream sends each step it missed); a renewal alone, never. The
       trigger runs BEFORE the write, to stamp notified_ms in the same row. */
    "ALTER TABLE jobs ADD COLUMN notified_ms bigint NOT NULL DEFAULT 0;"
    "CREATE OR REPLACE FUNCTION gesso_job_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
    " DECLARE ch text := (SELECT value FROM meta WHERE key = 'notify_channel');"
    "  now_ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;"
    " BEGIN"
    "  IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN"
    "   PERFORM pg_notify(ch, 'q' || NEW.id);"
    "   IF NEW.status = 'queued' THEN PERFORM pg_notify(ch || '_queued', ''); END IF;"
    "   NEW.notified_ms := now_ms;"
    "  ELSIF NEW.cancel_requested IS DISTINCT FROM OLD.cancel_requested"
    "   OR ((NEW.step IS DISTINCT FROM OLD.step OR NEW.preview_step IS DISTINCT FROM"
    "   OLD.preview_step) AND (OLD.step = 0 OR NEW.step >= NEW.steps"
    "   OR now_ms - OLD.notified_ms >= 250)) THEN"
    "   PERFORM pg_notify(ch, 'j' || NEW.id);"
    "   NEW.notified_ms := now_ms;"
    "  END IF;"
    "  RETURN NEW;"
    " END $$;"
    "DROP TRIGGER jobs_changed ON jobs;"
    "CREATE TRIGGER jobs_changed BEFORE INSERT OR UPDATE ON jobs"
    " FOR EACH ROW EXECUTE FUNCTION gesso_job_changed();",
    /* 6: API keys (store_pg_keys.c, store_keys.h): a salted hash of each key,
       never the key. A table of its own, touching nothing else, so this
       migration may come before or after any other. */
    "CREATE TABLE api_keys ("
    " name text PRIMARY KEY,"
    " salt text NOT NULL,"
    " hash text NOT NULL,"
    " max_active integer NOT NULL DEFAULT 0,"
    " max_cost double precision NOT NULL DEFAULT 0,"
    " admin integer NOT NULL DEFAULT 0,"
    " created_ms bigint NOT NULL,"
    " revoked_ms bigint);",
    /* 7: the number of queued jobs per priority, kept by triggers, so that a
       submit's queue position (every job queued at its priority or above: it
       is the newest) is a sum over a few rows instead of a count over the
       queue, which read every queued row (2.7 ms at 10,000: bench/RESULTS.md
       section 25). Each backend adds to its own shard of a priority's count,
       so that claimers and submitters on other connections never wait for
       one another's row; AFTER triggers, so an insert that ON CONFLICT
       skipped counts nothing. */
    "CREATE TABLE queue_counts ("
    " priority integer NOT NULL,"
    " shard smallint NOT NULL,"
    " n bigint NOT NULL,"
    " PRIMARY KEY (priority, shard));"
    "CREATE FUNCTION gesso_queue_counted() RETURNS trigger LANGUAGE plpgsql AS $$"
    " DECLARE sh smallint := (pg_backend_pid() % 16)::smallint;"
    " BEGIN"
    "  IF TG_OP <> 'INSERT' AND OLD.status = 'queued' THEN"
    "   INSERT INTO queue_counts AS c (priority, shard, n) VALUES (OLD.priority, sh, -1)"
    "    ON CONFLICT (priority, shard) DO UPDATE SET n = c.n - 1;"
    "  END IF;"
    "  IF TG_OP <> 'DELETE' AND NEW.status = 'queued' THEN"
    "   INSERT INTO queue_counts AS c (priority, shard, n) VALUES (NEW.priority, sh, 1)"
    "    ON CONFLICT (priority, shard) DO UPDATE SET n = c.n + 1;"
    "  END IF;"
    "  RETURN NULL;"
    " END $$;"
    "CREATE TRIGGER jobs_counted_insert AFTER INSERT ON jobs FOR EACH ROW"
    " WHEN (NEW.status = 'queued') EXECUTE FUNCTION gesso_queue_counted();"
    "CREATE TRIGGER jobs_counted_update AFTER UPDATE OF status, priority ON jobs FOR EACH ROW"
    " WHEN ((OLD.status = 'queued' OR NEW.status = 'queued')"
    " AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.priority IS DISTINCT FROM NEW.priority))"
    " EXECUTE FUNCTION gesso_queue_counted();"
    "CREATE TRIGGER jobs_counted_delete AFTER DELETE ON jobs FOR EACH ROW"
    " WHEN (OLD.status = 'queued') EXECUTE FUNCTION gesso_queue_counted();"
    /* after the triggers: CREATE TRIGGER locks out writers of jobs to the
       end of this transaction, so no status change falls between this count
       and the triggers (processes of the last version may still run) */
    "INSERT INTO queue_counts (priority, shard, n)"
    " SELECT priority, 0, count(*) FROM jobs WHERE status = 'queued' GROUP BY priority;",
};

#define SCHEMA_VERSION (int)(sizeof migrations / sizeof migrations[0])

/* The database's schema version into *version, 0 for a database gesso has
   not used (then meta is created); refuses one whose tables gesso did not
   make. Within the caller's transaction. */
static gs_status read_version(pg_store *s, int *version, svc_error *err)
{
    PGresult *r;
    gs_status st =
        pgs_query(s, err, "reading the schema", &r,
                  "SELECT to_regclass('meta') IS NOT NULL,"
                  " to_regclass('jobs') IS NOT NULL OR to_regclass('workers') IS NOT NULL",
                  "");
    if (st != GS_OK)
        return st;
    int have_meta = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    int have_tables = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    PQclear(r);
    *version = 0;
    if (!have_meta && have_tables)
        return svc_fail(err, GS_ERR_FORMAT,
                        "job store (PostgreSQL at %s): the database has a jobs or workers table"
                        " that gesso did not make; give gesso a database of its own, or a"
                        " schema (options=-csearch_path%%3DNAME in the URL)",
                        s->where);
    if (!have_meta)
        return pgs_exec(s, "creating the schema",
                        "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)", err);
    if ((st = pgs_query(s, err, "reading the schema", &r,
                        "SELECT value FROM meta WHERE key = 'schema'", "")) != GS_OK)
        return st;
    if (PQntuples(r) > 0)
        *version = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return GS_OK;
}

gs_status pgs_schema_open(pg_store *s, svc_error *err)
{
    gs_status st =
        pgs_exec(s, "taking the schema lock", "BEGIN ISOLATION LEVEL READ COMMITTED", err);
    if (st != GS_OK)
        return st;
    /* held to the transaction's end; every statement after it sees what an
       opener before it committed (read committed: a snapshot per statement) */
    PGresult *r;
    int version = 0;
    if ((st = pgs_query(s, err, "taking the schema lock", &r, "SELECT pg_advisory_xact_lock($1)",
                        "I", (int64_t)MIGRATION_LOCK)) == GS_OK)
        PQclear(r);
    if (st == GS_OK)
        st = read_version(s, &version, err);
    if (st == GS_OK && version > SCHEMA_VERSION)
        st = svc_fail(err, GS_ERR_FORMAT,
                      "job store (PostgreSQL at %s) has schema %d, from a newer gesso (this one"
                      " knows up to %d)",
                      s->where, version, SCHEMA_VERSION);
    for (int v = version; st == GS_OK && v < SCHEMA_VERSION; v++) {
        char what[64];
        snprintf(what, sizeof what, "upgrading the schema from %d to %d", v, v + 1);
        st = pgs_exec(s, what, migrations[v], err);
    }
    char now[16];
    snprintf(now, sizeof now, "%d", SCHEMA_VERSION);
    if (st == GS_OK && version < SCHEMA_VERSION)
        st = pgs_run(s, err, "recording the schema", NULL,
                     "INSERT INTO meta (key, value) VALUES ('schema', $1)"
                     " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                     "s", now);
    if (st == GS_OK)
        return pgs_exec(s, "creating the schema", "COMMIT", err);
    /* the first failure is the one to report; the rollback's own is dropped */
    PGresult *rb = PQexec(s->conn, "ROLLBACK");
    PQclear(rb);
    return st;
}

/* Cheap on purpose (a server checks at start): the server keeps its own
   pages sound; what can be wrong is a schema this gesso does not know. */
gs_status pgs_check(job_store *js, svc_error *err)
{
    pg_store *s = pgs(js);
    int version = -1, found = 0;
    gs_status st = pgs_int(s, err, "checking the database", &version, &found,
                           "SELECT value::integer FROM meta WHERE key = 'schema'", "");
    if (st == GS_OK && (!found || version != SCHEMA_VERSION))
        st = svc_fail(err, GS_ERR_FORMAT,
                      "job store (PostgreSQL at %s) has schema %d; this gesso uses %d", s->where,
                      found ? version : 0, SCHEMA_VERSION);
    return st;
}
