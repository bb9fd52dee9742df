/** The MariaDB type matrix: one column of every type the MySQL source reads, and rows of edge values (4: all NULL). */

export const COLUMNS = `
  id INT PRIMARY KEY,
  ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT, i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
  d65 DECIMAL(65,30), d12 DECIMAL(12,2), f FLOAT, db DOUBLE,
  b1 BIT(1), b10 BIT(10), b64 BIT(64),
  c8 CHAR(8), vc VARCHAR(50), tx TEXT, lat VARCHAR(20) CHARACTER SET latin1, emoji VARCHAR(20) CHARACTER SET utf8mb4,
  bn BINARY(4), vb VARBINARY(20), bl BLOB,
  dt DATE, dt6 DATETIME(6), dt0 DATETIME, ts6 TIMESTAMP(6) NULL DEFAULT NULL, tm6 TIME(6), yr YEAR,
  j JSON, e ENUM('a','b''c','d e'), st SET('x','y','z'), u UUID,
  g BIGINT AS (i * 2) VIRTUAL, gs VARCHAR(60) AS (CONCAT(vc, '!')) STORED`;

/** Every stored column (generated ones compute themselves in a pre-created target). */
export const STORED =
  'id ti tu si mi i iu bi bu d65 d12 f db b1 b10 b64 c8 vc tx lat emoji bn vb bl dt dt6 dt0 ts6 tm6 yr j e st u'.split(
    ' ',
  );
export const ALL = [...STORED, 'g', 'gs'];

export const ROWS = [
  `(1, -128, 255, -32768, -8388608, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
    '99999999999999999999999999999999999.999999999999999999999999999999', '-9999999999.99', 3.40282e38, -1.7976931348623157e308,
    b'1', b'1010101010', b'1111111111111111111111111111111111111111111111111111111111111111',
    'abc', 'it''s "q" \\\\ \\t tab', REPEAT('x', 20000), 'café', '😀 emoji ü',
    X'00FF0A09', X'', X'000102030405060708090A0B0C0D0E0F10', '1000-01-01', '1000-01-01 00:00:00.000000', '9999-12-31 23:59:59',
    '1970-01-01 00:00:01.000000', '-838:59:59.000000', 1901,
    '{"a": 1.50, "big": 123456789012345678901234567890, "s": "\\\\u00e9", "n": [1e400, -0]}', 'b''c', 'x,z', '123e4567-e89b-12d3-a456-426614174000')`,
  `(2, 127, 0, 32767, 8388607, 2147483647, 0, 9223372036854775807, 9223372036854775808,
    '-0.000000000000000000000000000001', '0.00', -1.17549e-38, 4.9e-324,
    b'0', b'0000000001', b'1000000000000000000000000000000000000000000000000000000000000000',
    '', '', '', '', '',
    X'00000000', X'FF', X'FFFEFDFC', '9999-12-31', '9999-12-31 23:59:59.999999', '2024-02-29 12:00:00',
    '2038-01-19 03:14:07.999999', '838:59:59.000000', 2155,
    '[]', 'd e', '', '00000000-0000-0000-0000-000000000000')`,
  `(3, 0, 1, 0, 0, 0, 1, 0, 0, '0', '0.10', 16777216, -0,
    b'1', b'0', b'0', 'x', 'line1\\nline2\\r\\n', 'tab\\there', 'ÿ', '\\t\\\\N',
    X'01020304', X'5C4E', X'0A0D09', '2024-02-29', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05',
    '2024-06-30 23:59:59.000001', '00:00:00.000001', 2000,
    '{"nested": {"k": [true, false, null]}, "x": "\\\\n"}', 'a', 'x,y,z', 'ffffffff-ffff-ffff-ffff-ffffffffffff')`,
  `(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
];
