/*
 * freshness.c
 *	  Benchmark (e): how fresh trafficagg's answers are while a steady load
 *	  runs (started separately, with wall-clock event times).
 *
 *	  freshness BROKERS TOPIC CONNINFO SECONDS
 *
 *	  Live: every 100 ms a probe event with a unique page is produced (the
 *	  load keeps the watermark moving); the delay is from just before it is
 *	  produced until trafficagg.groups('by_page', key) shows it (polled every
 *	  ms; the key's lookup reads only that group: groups('by_page') with a
 *	  WHERE built all ~4,000 live groups, 13 ms a query, and measured mostly
 *	  its own duration).
 *	  Final: for each window closed during the run, the delay from the moment
 *	  the watermark passed its end (wall clock = window end + allowed
 *	  lateness, as the load's events carry the wall clock) until its row is in
 *	  trafficagg.total (polled every ms).
 *	  Prints one JSON object with p50/p99/max of both, in milliseconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

static double
pct(double *v, int n, double p)
{
	if (n == 0)
		return -1;
	qsort(v, n, sizeof(double), cmp_double);
	return v[(int) (p * (n - 1) + 0.5)];
}

static PGresult *
query(PGconn *c, const char *sql)
{
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "query failed: %s", PQerrorMessage(c));
		exit(1);
	}
	return r;
}

int
main(int argc, char **argv)
{
	char		errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	PGconn	   *pg;
	double		live[10000],
				final[1000];
	int			nlive = 0,
				nfinal = 0;
	double		end;
	char		last_closed[64] = "";

	if (argc != 5)
	{
		fprintf(stderr, "usage: %s BROKERS TOPIC CONNINFO SECONDS\n", argv[0]);
		return 2;
	}
	if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "compression.type", "none", errstr, sizeof(errstr)) ||
		!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))))
	{
		fprintf(stderr, "%s\n", errstr);
		return 1;
	}
	pg = PQconnectdb(argv[3]);
	if (PQstatus(pg) != CONNECTION_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(pg));
		return 1;
	}

	/*
	 * the producer's first message waits for the brokers' metadata (about a
	 * second): one not measured first
	 */
	{
		const char *warm = "{\"timestamp\":\"2026-01-01T00:00:00Z\",\"event_type\":\"probe\",\"page\":\"/probe/warm-up\"}";

		if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(argv[2]), RD_KAFKA_V_VALUE((void *) warm, strlen(warm)),
							  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END))
			return 1;
		rd_kafka_flush(rk, 10000);
	}
	end = now_ms() + atof(argv[4]) * 1000;
	for (int probe = 0; now_ms() < end && nlive < 10000; probe++)
	{
		char		page[64],
					ev[512],
					sql[256],
					ts[64];
		time_t		secs;
		struct tm	tm;
		double		t0 = now_ms(),
					next = t0 + 100;
		PGresult   *r;

		/* live: produce a probe, wait until the live view has it */
		snprintf(page, sizeof(page), "/probe/%d/%ld", probe, (long) getpid());
		secs = (time_t) (t0 / 1000);
		gmtime_r(&secs, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(ev, sizeof(ev),
				 "{\"timestamp\":\"%s.%03dZ\",\"event_type\":\"probe\",\"page\":\"%s\"}",
				 ts, (int) ((long long) t0 % 1000), page);
		if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(argv[2]), RD_KAFKA_V_VALUE(ev, strlen(ev)),
							  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END))
			return 1;
		rd_kafka_poll(rk, 0);
		snprintf(sql, sizeof(sql),
				 "SELECT 1 FROM trafficagg.groups('by_page', ARRAY['%s', NULL])", page);
		for (;;)
		{
			r = query(pg, sql);
			if (PQntuples(r) > 0)
			{
				live[nlive++] = now_ms() - t0;
				PQclear(r);
				break;
			}
			PQclear(r);
			if (now_ms() - t0 > 10000)
				break;			/* lost? counted as missing below */
			usleep(1000);
		}

		/* final: has the watermark closed a new window?  then time its row */
		r = query(pg, "SELECT extract(epoch FROM e) * 1000"
				  " + extract(epoch FROM current_setting('trafficagg.allowed_lateness')::interval) * 1000,"
				  " to_char(e, 'YYYY-MM-DD HH24:MI:SS.MSOF')"
				  " FROM (SELECT date_bin(current_setting('trafficagg.window')::interval,"
				  " max(watermark), 'epoch') AS e FROM trafficagg.status) s");
		if (!PQgetisnull(r, 0, 1) && strcmp(PQgetvalue(r, 0, 1), last_closed) != 0)
		{
			double		t1 = atof(PQgetvalue(r, 0, 0));	/* watermark passed the end */
			int			first = last_closed[0] == '\0';

			snprintf(last_closed, sizeof(last_closed), "%s", PQgetvalue(r, 0, 1));
			snprintf(sql, sizeof(sql),
					 "SELECT 1 FROM trafficagg.total WHERE window_end = '%s'", last_closed);
			while (!first)
			{
				PGresult   *q = query(pg, sql);
				int			found = PQntuples(q) > 0;

				PQclear(q);
				if (found)
				{
					final[nfinal++] = now_ms() - t1;
					break;
				}
				if (now_ms() - t1 > 10000)
					break;
				usleep(1000);
			}
		}
		PQclear(r);
		while (now_ms() < next)
			usleep(1000);
	}
	rd_kafka_flush(rk, 5000);
	rd_kafka_destroy(rk);
	PQfinish(pg);

	{
		int			nl = nlive,
					nf = nfinal;
		double		l50 = pct(live, nl, 0.5),
					l99 = pct(live, nl, 0.99),
					lmax = nl ? live[nl - 1] : -1;
		double		f50 = pct(final, nf, 0.5),
					f99 = pct(final, nf, 0.99),
					fmax = nf ? final[nf - 1] : -1;

		printf("{\"live_probes\": %d, \"live_p50_ms\": %.1f, \"live_p99_ms\": %.1f, \"live_max_ms\": %.1f, "
			   "\"final_windows\": %d, \"final_p50_ms\": %.1f, \"final_p99_ms\": %.1f, \"final_max_ms\": %.1f}\n",
			   nl, l50, l99, lmax, nf, f50, f99, fmax);
	}
	return 0;
}
