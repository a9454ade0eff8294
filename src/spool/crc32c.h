/*
 * crc32c.h - CRC-32C (Castagnoli, the iSCSI/ext4 polynomial), which guards
 * every journal frame and cursor.  Private to src/spool/.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/**
 * crc32c:
 * Continues a CRC-32C over @len bytes at @buf.  Start with @crc = 0; the
 * result of one call is the @crc of the next when data comes in pieces.
 * crc32c(0, "123456789", 9) == 0xe3069283.
 */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/** crc32c_portable: the same, always by table (the reference for tests). */
uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t len);
