/*-------------------------------------------------------------------------
 *
 * source.h
 *	  The source table (source.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_SOURCE_H
#define TRAFFICAGG_SOURCE_H

#include "event.h"

/* Slot of the SQL ingest path; Kafka partitions take slots 1.. */
#define TA_SQL_SOURCE 0

/* A source's entry as status() shows it (source_read). */
typedef struct TaSourceInfo
{
	bool		in_use;
	bool		assigned;
	char		topic[NAMEDATALEN];
	int32		partition;
	int64		end_offset;
	uint64		consumed;
	uint64		outcomes[TA_NUM_OUTCOMES];
} TaSourceInfo;

extern Size source_shmem_size(void);
extern void source_shmem_request(void);
extern void source_shmem_init(void);

extern int	source_slots(void);
extern int	source_lookup(const char *topic, int32 partition, bool create);
extern const char *source_topic(int src);
extern int32 source_partition(int src);

extern void source_set_assigned(int src, bool assigned);
extern void source_set_active(int src, bool active);
extern void source_read_active(bool *active);
extern void source_set_end_offset(int src, int64 end_offset);
extern void source_raise_end_offset(int src, int64 end_offset);
extern void source_count(int src, TaOutcome outcome);
extern void source_read(int src, TaSourceInfo *out);

#endif							/* TRAFFICAGG_SOURCE_H */
