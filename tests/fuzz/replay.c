/*
 * replay.c - runs a fuzz target over files and directories of inputs, for
 * builds without libFuzzer: the seed corpus and the regression inputs then
 * run under the ordinary test suite (and its sanitizer build).
 */
#include <glib.h>
#include <stdio.h>

#include "fuzz.h"

static int run_file(const char *path, guint *count)
{
	g_autofree char *data = NULL;
	gsize len = 0;
	g_autoptr(GError) error = NULL;

	if (!g_file_get_contents(path, &data, &len, &error)) {
		fprintf(stderr, "%s\n", error->message);
		return 1;
	}
	LLVMFuzzerTestOneInput((const uint8_t *)data, len);
	(*count)++;
	return 0;
}

int main(int argc, char **argv)
{
	guint count = 0;
	int failed = 0;

	for (int i = 1; i < argc; i++) {
		if (!g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
			failed |= run_file(argv[i], &count);
			continue;
		}
		g_autoptr(GDir) dir = g_dir_open(argv[i], 0, NULL);
		const char *name;
		while (dir && (name = g_dir_read_name(dir))) {
			g_autofree char *path = g_build_filename(argv[i], name, NULL);
			failed |= run_file(path, &count);
		}
	}
	if (count == 0) {
		fprintf(stderr, "no input found\n");
		return 1;
	}
	printf("%u inputs ran\n", count);
	return failed;
}
