/*-------------------------------------------------------------------------
 *
 * recovery.h
 *	  Exactly once across crashes (recovery.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_RECOVERY_H
#define TRAFFICAGG_RECOVERY_H

extern Size recovery_shmem_size(void);
extern void recovery_shmem_request(void);
extern void recovery_shmem_init(void);

/* the consumer starts, partitions are assigned */
extern void recovery_load(bool replay);
extern bool recovery_has_stored(const char *topic, int32 partition);
extern bool recovery_place(int src, int64 *offset);
extern void recovery_take_over(int src, int64 offset);

/* each message */
extern bool recovery_is_replay(int src, int64 offset);
extern bool recovery_skip_window(int src, int64 offset, int64 window_start);
/* a Kafka message processed (recovery_note_messages) */
typedef struct TaProcessed
{
	int			src;
	int64		offset;
	bool		accepted;
	int64		first_end;		/* accepted: its first and last window end */
	int64		last_end;
} TaProcessed;

extern void recovery_note_messages(const TaProcessed *m, int n);

/* state */
extern bool recovery_replaying(void);
extern bool recovery_has_positions(void);
extern void recovery_read(int src, int64 *position, int64 *resume_offset);

/* in a flush's transaction */
typedef struct TaRecoveryCut TaRecoveryCut;

extern void recovery_batch_begin(void);
extern void recovery_batch_end(void);
extern void recovery_cut_begin(void);
extern void recovery_cut_end(void);
extern TaRecoveryCut *recovery_snapshot(int64 written_through);
extern void recovery_write(const TaRecoveryCut *cut, int64 watermark, int64 spilled);
extern void recovery_forget_spilled(int64 watermark);
extern void recovery_rewind(int64 to_ms);

#endif							/* TRAFFICAGG_RECOVERY_H */
