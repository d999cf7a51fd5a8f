/*-------------------------------------------------------------------------
 *
 * request.h
 *	  Requests from SQL functions to the worker (request.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_REQUEST_H
#define TRAFFICAGG_REQUEST_H

#include "storage/latch.h"

extern Size request_shmem_size(void);
extern void request_shmem_init(void);
extern void request_set_worker(Latch *latch);

/* backends */
extern uint64 flush_request_submit(bool close_all);
extern int64 flush_request_wait(uint64 ticket);
extern uint64 rewind_request_submit(int64 to_ms);
extern void rewind_request_wait(uint64 ticket);

/* the worker */
extern uint64 flush_request_take(bool *close_all);
extern void flush_request_complete(uint64 ticket, bool ok, int64 rows, const char *error);
extern uint64 rewind_request_take(int64 *to_ms);
extern void rewind_request_complete(uint64 ticket, bool ok, const char *error);
/* room for the name of a setting (trafficagg.max_groups, ...) */
#define TA_SETTING_NAME_LEN 64

extern uint64 room_request_submit(bool spill, const char *setting);
extern bool room_request_done(uint64 gen);
extern uint64 room_request_take(bool *spill, char *setting);
extern void room_request_complete(uint64 gen);

#endif							/* TRAFFICAGG_REQUEST_H */
