/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The background worker (worker.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_WORKER_H
#define TRAFFICAGG_WORKER_H

#include "fmgr.h"

extern PGDLLEXPORT void trafficagg_worker_main(Datum arg);
extern void worker_register(void);

#endif							/* TRAFFICAGG_WORKER_H */
