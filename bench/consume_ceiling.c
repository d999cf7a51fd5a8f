/*
 * consume_ceiling.c
 *	  Benchmark (a): the physical limit of the pipeline on this machine.  A
 *	  plain librdkafka high-level consumer reads every message of a topic
 *	  from the beginning to the end of all partitions and does nothing else.
 *
 *	  consume_ceiling BROKERS TOPIC EXPECTED_MESSAGES
 *
 *	  Prints one JSON object: messages, bytes, seconds (from the first
 *	  message to the last), messages_per_s, cpu_s (this process).
 *
 *	  Built with -DCONSUME_AND_PARSE (as consume_parse, the Makefile) it also
 *	  parses and validates every message with trafficagg's parser
 *	  (extension/event.c, linked in as it is) under the default mapping, as
 *	  the worker does, and aggregates nothing: the floor of the worker's CPU
 *	  per event, reading and validating only.  Its JSON adds accepted.
 */
#ifdef CONSUME_AND_PARSE
#include "../extension/trafficagg.h"
#include "../extension/event.h"

/* the one setting event.c reads */
int			ta_max_event_bytes = 65536;
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int
main(int argc, char **argv)
{
	char		errstr[512];
	char		group[64];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_queue_t *q;
	rd_kafka_message_t *batch[1000];
	long long	expected,
				messages = 0,
				bytes = 0;
#ifdef CONSUME_AND_PARSE
	long long	accepted = 0;
#endif
	double		first = 0,
				last = 0,
				deadline;

	if (argc != 4)
	{
		fprintf(stderr, "usage: %s BROKERS TOPIC EXPECTED_MESSAGES\n", argv[0]);
		return 2;
	}
	expected = atoll(argv[3]);
#ifdef CONSUME_AND_PARSE
	snprintf(group, sizeof(group), "consume-parse-%ld", (long) time(NULL));
#else
	snprintf(group, sizeof(group), "ceiling-%ld", (long) time(NULL));
#endif
	if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "queued.max.messages.kbytes", "16384", errstr, sizeof(errstr)))
	{
		fprintf(stderr, "%s\n", errstr);
		return 1;
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (!rk)
	{
		fprintf(stderr, "%s\n", errstr);
		return 1;
	}
	rd_kafka_poll_set_consumer(rk);
	topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, argv[2], RD_KAFKA_PARTITION_UA);
	rd_kafka_subscribe(rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	q = rd_kafka_queue_get_consumer(rk);

	deadline = now() + 600;
	while (messages < expected && now() < deadline)
	{
		ssize_t		n = rd_kafka_consume_batch_queue(q, 100, batch, 1000);

		for (ssize_t i = 0; i < n; i++)
		{
			if (!batch[i]->err)
			{
				if (messages == 0)
					first = now();
				messages++;
				bytes += batch[i]->len;
#ifdef CONSUME_AND_PARSE
				{
					TaEvent		ev;
					char		detail[TA_DETAIL_LEN];
					TaMessage	msg = {.data = batch[i]->payload, .len = batch[i]->len,
						.key = batch[i]->key, .key_len = batch[i]->key_len,
						.timestamp_ms = rd_kafka_message_timestamp(batch[i], NULL)};

					if (msg.timestamp_ms < 0)
						msg.timestamp_ms = TA_NO_TIME;
					if (event_parse(mapping_default(), &msg, &ev, detail, sizeof(detail)) == TA_ACCEPTED)
					{
						accepted++;
						event_free(&ev);
					}
				}
#endif
			}
			rd_kafka_message_destroy(batch[i]);
		}
		if (n > 0)
			last = now();
	}
	rd_kafka_queue_destroy(q);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);

	printf("{\"messages\": %lld, \"bytes\": %lld, \"seconds\": %.3f, "
		   "\"messages_per_s\": %.0f, \"cpu_s\": %.3f",
		   messages, bytes, last - first,
		   last > first ? messages / (last - first) : 0.0, cpu_seconds());
#ifdef CONSUME_AND_PARSE
	printf(", \"accepted\": %lld", accepted);
#endif
	printf("}\n");
	return messages == expected ? 0 : 1;
}
