/*
 * nested_mapping.h
 *	  The field mapping of the README's nested example, as the test and
 *	  benchmark programs build it (sql/mapping.sql and t/015 set the same one
 *	  up through trafficagg.fields).  Include after event.h.
 */
#ifndef TRAFFICAGG_NESTED_MAPPING_H
#define TRAFFICAGG_NESTED_MAPPING_H

#include <stdio.h>
#include <string.h>

static void
add_field(TaMapping *m, int slot, const char *name, const char *path, TaFieldType type,
		  bool required, TaFieldRole role, TaTimeFormat format, int64 unit_us)
{
	TaFieldDef *d = &m->fields[slot];

	d->in_use = true;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->source = TA_FROM_VALUE;
	snprintf(d->path, sizeof(d->path), "%s", path);
	d->type = type;
	d->required = required;
	d->role = role;
	d->format = format;
	d->unit_us = unit_us;
}

/* {"ts": epoch ms, "request": {"url", "status", "duration_us"}, "geo": {"country"}, ...} */
static const TaMapping *
nested_mapping(void)
{
	static TaMapping nested;

	if (nested.version == 0)
	{
		memset(&nested, 0, sizeof(nested));
		nested.version = 7;
		add_field(&nested, 0, "ts", "ts", TA_TYPE_TIME, true, TA_ROLE_EVENT_TIME, TA_TIME_EPOCH_MS, 0);
		add_field(&nested, 1, "url", "request.url", TA_TYPE_TEXT, true, TA_ROLE_NONE, 0, 0);
		add_field(&nested, 2, "status", "request.status", TA_TYPE_INTEGER, false, TA_ROLE_STATUS, 0, 0);
		add_field(&nested, 3, "duration", "request.duration_us", TA_TYPE_NUMBER, false, TA_ROLE_LATENCY, 0, 1);
		add_field(&nested, 4, "country", "geo.country", TA_TYPE_TEXT, false, TA_ROLE_NONE, 0, 0);
		add_field(&nested, 5, "visitor", "visitor", TA_TYPE_TEXT, false, TA_ROLE_USER_ID, 0, 0);
		add_field(&nested, 6, "order_total", "order.total", TA_TYPE_NUMBER, false, TA_ROLE_NONE, 0, 0);
		add_field(&nested, 7, "type", "type", TA_TYPE_TEXT, false, TA_ROLE_NONE, 0, 0);
		add_field(&nested, 8, "device", "device", TA_TYPE_TEXT, false, TA_ROLE_NONE, 0, 0);
		add_field(&nested, 9, "region", "geo.region.name", TA_TYPE_TEXT, false, TA_ROLE_NONE, 0, 0);
	}
	return &nested;
}

#endif
