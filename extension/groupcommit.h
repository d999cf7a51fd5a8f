/*-------------------------------------------------------------------------
 *
 * groupcommit.h
 *	  The two-phase commit of a flush with the group's offsets, for servers
 *	  sharing one consumer group (groupcommit.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_GROUPCOMMIT_H
#define TRAFFICAGG_GROUPCOMMIT_H

extern void groupcommit_start(void);
extern void groupcommit_stop(void);
extern bool groupcommit_ready(void);
extern void groupcommit_commit(bool wrote);

#endif							/* TRAFFICAGG_GROUPCOMMIT_H */
