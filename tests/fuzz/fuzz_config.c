/*
 * fuzz_config.c - the configuration parser.  Beyond not crashing, what it
 * accepts must print back to text that loads to the same settings, since
 * `ctflowd -n` promises exactly that.
 */
#include <stdlib.h>
#include <string.h>

#include "ctflowd/config.h"
#include "fuzz.h"

static void quiet(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean init;
	g_autofree char *text = g_malloc(size + 1);

	if (!init) {
		g_log_set_default_handler(quiet, NULL);
		init = TRUE;
	}
	memcpy(text, data, size);
	text[size] = '\0';

	GError *error = NULL;
	struct ctflowd_config *config = config_load_data(text, "fuzz.conf", &error);
	if (!config) {
		/* a refusal must say why */
		if (!error || !error->message || !error->message[0])
			abort();
		g_error_free(error);
		return 0;
	}
	g_autofree char *printed = config_to_string(config);
	struct ctflowd_config *again = config_load_data(printed, "printed.conf", &error);
	if (!again)
		abort();   /* -n printed something it cannot read back */
	g_autofree char *reprinted = config_to_string(again);
	if (strcmp(printed, reprinted) != 0)
		abort();   /* the round trip changed a setting */
	config_free(again);
	config_free(config);
	return 0;
}
