/*
 * verdict_probe: prints the verdict of agent/verdict.c for each line
 * "storage|api STATUS [CODE]" on stdin, one name a line. The interop
 * stage holds the table against the AWS SDK's own error classification.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "agent/verdict.h"

int main(void)
{
	char line[256], dialect[16], code[128];
	long status;

	while (fgets(line, sizeof(line), stdin)) {
		code[0] = '\0';
		if (sscanf(line, "%15s %ld %127s", dialect, &status, code) < 2) {
			fprintf(stderr, "verdict_probe: cannot read: %s", line);
			return 2;
		}
		enum hs_verdict v = strcmp(dialect, "storage") == 0
					? hs_verdict_storage(status, code)
					: hs_verdict_api(status, code);
		printf("%s\n", hs_verdict_name(v));
	}
	return 0;
}
