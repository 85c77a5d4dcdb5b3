/*
 * cmd_keys - `gesso keys`: the API keys kept in the job store, which every
 * `gesso serve` on that store accepts (a fleet's front ends on one
 * database), added or revoked while they run.
 *
 *   gesso keys add NAME [--max-active N] [--max-cost MPS] [--admin]
 *   gesso keys list
 *   gesso keys revoke NAME
 *
 * each with --store URL or --data DIR, chosen as `gesso serve` chooses its
 * store. add prints the new key on stdout and nothing else there (a script
 * takes it with $(...)); the store keeps only a salted hash, so the key
 * cannot be shown again. Messages go to stderr and never hold the store's URL
 * (it may hold a password).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/api_keys.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "queue/store.h"
#include "queue/store_keys.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gesso keys add NAME [--max-active N] [--max-cost MPS] [--admin] [STORE]\n"
            "       gesso keys list [STORE]\n"
            "       gesso keys revoke NAME [STORE]\n"
            "\n"
            "API keys kept in the job store: every `gesso serve` on the store accepts them\n"
            "(with its --api-keys FILE keys, if any), within a second or two of a change,\n"
            "without a restart. The store keeps a salted hash of each key, never the key.\n"
            "\n"
            "  add NAME            make a key for NAME (1..63 of A-Z a-z 0-9 . _ -; the owner\n"
            "                      of the jobs it submits) and print it, once, on stdout\n"
            "  --max-active N      queued plus running jobs the key may have (0: no bound)\n"
            "  --max-cost MPS      megapixel-steps each job may cost (0: no bound)\n"
            "  --admin             the key sees and cancels every job and reads /metrics\n"
            "  list                every key: name, admin, limits, created, revoked (never\n"
            "                      the key)\n"
            "  revoke NAME         the key stops working; its name stays taken (it owns\n"
            "                      jobs)\n"
            "\n"
            "STORE, as for gesso serve:\n"
            "  --data DIR          the store DIR/jobs.db (default gesso-data)\n"
            "  --store URL         a SQLite file (PATH or sqlite:PATH) or a PostgreSQL\n"
            "                      database (postgresql://USER@HOST[:PORT]/DB; libpq's PG*\n"
            "                      variables apply: keep a password in PGPASSWORD or\n"
            "                      ~/.pgpass)\n"
            "\n"
            "Once a store holds a key (revoked ones count), gesso serve on it asks every\n"
            "request for a key.\n");
}

/* Unix milliseconds as 2026-01-02T03:04:05Z into buf. */
static void utc_text(int64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "?");
}

static int list_keys(job_store *s)
{
    store_key *rows;
    int n;
    svc_error err = {0};
    if (store_keys_list(s, &rows, &n, &err) != GS_OK) {
        fprintf(stderr, "gesso: %s\n", err.msg);
        return EXIT_FAILURE_OTHER;
    }
    printf("%-24s %-5s %10s %10s  %-20s  %s\n", "NAME", "ADMIN", "MAX_ACTIVE", "MAX_COST",
           "CREATED", "REVOKED");
    for (int i = 0; i < n; i++) {
        char created[32], revoked[32] = "-";
        utc_text(rows[i].created_ms, created, sizeof created);
        if (rows[i].revoked_ms)
            utc_text(rows[i].revoked_ms, revoked, sizeof revoked);
        printf("%-24s %-5s %10d %10g  %-20s  %s\n", rows[i].name, rows[i].admin ? "yes" : "no",
               rows[i].max_active, rows[i].max_cost, created, revoked);
    }
    free(rows);
    return EXIT_OK;
}

static int add_key(job_store *s, const char *name, int max_active, double max_cost, int admin)
{
    char key[STORE_KEY_LEN + 1];
    svc_error err = {0};
    if (store_key_add(s, name, max_active, max_cost, admin, store_clock_ms(), key, &err) != GS_OK) {
        fprintf(stderr, "gesso: %s\n", err.msg);
        return EXIT_FAILURE_OTHER;
    }
    printf("%s\n", key);
    fflush(stdout);
    fprintf(stderr, "gesso: added key '%s'; it is shown this once (the store keeps a hash)\n",
            name);
    return EXIT_OK;
}

static int revoke_key(job_store *s, const char *name)
{
    int revoked = 0;
    svc_error err = {0};
    if (store_key_revoke(s, name, store_clock_ms(), &revoked, &err) != GS_OK) {
        fprintf(stderr, "gesso: %s\n", err.msg);
        return EXIT_FAILURE_OTHER;
    }
    if (!revoked) {
        fprintf(stderr, "gesso: no valid key named '%s'\n", name);
        return EXIT_FAILURE_OTHER;
    }
    fprintf(stderr, "gesso: revoked key '%s'\n", name);
    return EXIT_OK;
}

int cmd_keys(int argc, char **argv)
{
    static const struct option opts[] = {
        {"store", required_argument, 0, 'S'},
        {"data", required_argument, 0, 'd'},
        {"max-active", required_argument, 0, 'a'},
        {"max-cost", required_argument, 0, 'c'},
        {"admin", no_argument, 0, 'A'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return EXIT_OK;
    }
    const char *sub = argc >= 2 ? argv[1] : "";
    int is_add = strcmp(sub, "add") == 0, is_list = strcmp(sub, "list") == 0,
        is_revoke = strcmp(sub, "revoke") == 0;
    if (!is_add && !is_list && !is_revoke) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *store_url = NULL, *data_dir = "gesso-data";
    int max_active = 0, admin = 0;
    double max_cost = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'S': store_url = optarg; break;
        case 'd': data_dir = optarg; break;
        case 'a': bad = arg_int("--max-active", optarg, 0, 1000000, &max_active); break;
        case 'c': bad = arg_double("--max-cost", optarg, 0, 1e12, &max_cost); break;
        case 'A': admin = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
        if (bad)
            return EXIT_USAGE;
    }
    int want = is_list ? 0 : 1; /* NAME */
    if (argc - 1 - optind != want || (!is_add && (max_active || max_cost > 0 || admin))) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = want ? argv[1 + optind] : NULL;
    if (name && !api_key_name_ok(name)) {
        fprintf(stderr, "gesso: a key's NAME is 1..63 of A-Z a-z 0-9 . _ -\n");
        return EXIT_USAGE;
    }
    char path[4200];
    if (!store_url) {
        snprintf(path, sizeof path, "%s/jobs.db", data_dir);
        struct stat sb;
        if (is_add)
            mkdir(data_dir, 0755); /* as gesso serve makes it */
        else if (stat(path, &sb) != 0) {
            fprintf(stderr, "gesso: no job store at '%s' (--data DIR or --store URL)\n", path);
            return EXIT_FAILURE_OTHER;
        }
        store_url = path;
    }
    job_store *s;
    svc_error err = {0};
    if (store_open(store_url, &s, &err) != GS_OK) {
        fprintf(stderr, "gesso: %s\n", err.msg);
        return EXIT_FAILURE_OTHER;
    }
    int code = is_list  ? list_keys(s)
               : is_add ? add_key(s, name, max_active, max_cost, admin)
                        : revoke_key(s, name);
    store_close(s);
    return code;
}
