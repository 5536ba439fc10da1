import { readFileSync } from "node:fs";
import t from "tap";
import { SCHEMAS } from "ovsdb-sandbox";
import { encodeOperation, namedUuid, op, parseSchema, SchemaError, decodeRow, wire } from "../src/index.js";

// The real OVN_Northbound schema, as the server would send it.
const nb = parseSchema(JSON.parse(readFileSync(SCHEMAS.northbound, "utf8")));

t.test("plain values are encoded by the column's kind", async (t) => {
  const encoded = encodeOperation(
    nb,
    op.insert(
      "Logical_Switch_Port",
      {
        name: "pod-a.default",
        addresses: ["0a:00:00:00:00:01 10.16.0.5"],
        external_ids: { pod: "default/pod-a" },
        tag_request: 7,
        dhcpv4_options: null,
        enabled: true,
      },
      { uuidName: "lsp" },
    ),
  );
  t.same(encoded, {
    op: "insert",
    table: "Logical_Switch_Port",
    "uuid-name": "lsp",
    row: {
      name: "pod-a.default",
      addresses: ["set", ["0a:00:00:00:00:01 10.16.0.5"]],
      external_ids: ["map", [["pod", "default/pod-a"]]],
      tag_request: 7,
      dhcpv4_options: ["set", []],
      enabled: true,
    },
  });
  const ls = encodeOperation(nb, op.insert("Logical_Switch", { name: "ls", ports: [namedUuid("lsp")] }));
  t.same((ls.row as Record<string, unknown>).ports, ["set", [["named-uuid", "lsp"]]]);
});

t.test("mutations and conditions", async (t) => {
  const m = encodeOperation(
    nb,
    op.mutate(
      "Logical_Switch_Port",
      [["external_ids", "includes", { pod: "default/a" }]],
      [
        ["external_ids", "delete", ["stale"]],
        ["addresses", "insert", ["x"]],
      ],
    ),
  );
  t.same(m.where, [["external_ids", "includes", ["map", [["pod", "default/a"]]]]]);
  t.same(m.mutations, [
    ["external_ids", "delete", ["set", ["stale"]]],
    ["addresses", "insert", ["set", ["x"]]],
  ]);
});

t.test("schema errors name the table and column before anything is sent", async (t) => {
  t.throws(() => encodeOperation(nb, op.insert("Logical_Swtch", {})), {
    name: "SchemaError",
    message: /table Logical_Swtch: database OVN_Northbound has no such table \(tables: .*Logical_Switch,/,
  });
  t.throws(() => encodeOperation(nb, op.insert("NAT", { extrnal_ip: "1.2.3.4" })), {
    message: /^NAT\.extrnal_ip: no such column \(columns: .*external_ip/,
  });
  t.throws(() => encodeOperation(nb, op.insert("NAT", { type: "dnat-snat" })), {
    message: 'NAT.type: expected one of "dnat", "snat", "dnat_and_snat", found "dnat-snat"',
  });
  t.throws(() => encodeOperation(nb, op.insert("Logical_Switch_Port", { tag_request: 5000 })), {
    message: "Logical_Switch_Port.tag_request: expected an integer <= 4095, found 5000",
  });
  t.throws(() => encodeOperation(nb, op.insert("Logical_Switch_Port", { addresses: "x" })), {
    message: /Logical_Switch_Port\.addresses: expected an array \(set column\), found "x"/,
  });
  t.throws(() => encodeOperation(nb, op.insert("Logical_Switch_Port", { external_ids: { pod: 5 } })), {
    message: /Logical_Switch_Port\.external_ids: value of key "pod": expected a string, found 5/,
  });
  t.throws(() => encodeOperation(nb, op.insert("Logical_Switch", { ports: ["not-a-uuid"] })), SchemaError);
  t.throws(() => encodeOperation(nb, op.update("Logical_Switch", [], { _uuid: "x" })), {
    message: /read-only/,
  });
});

t.test("rows are decoded by the column's kind", async (t) => {
  const table = nb.tables.get("Logical_Switch_Port");
  const row = decodeRow(table, {
    _uuid: ["uuid", "7b0f6d3d-6c36-4d57-9b8e-5e2f7b3a7f3a"],
    addresses: "0a:00:00:00:00:01 10.16.0.5",
    external_ids: ["map", [["pod", "default/a"]]],
    dhcpv4_options: ["set", []],
    tag: 12,
  });
  t.same(row, {
    _uuid: "7b0f6d3d-6c36-4d57-9b8e-5e2f7b3a7f3a",
    addresses: ["0a:00:00:00:00:01 10.16.0.5"],
    external_ids: { pod: "default/a" },
    dhcpv4_options: null,
    tag: 12,
  });
  t.same(wire.map({ a: "b" }), ["map", [["a", "b"]]]);
  t.throws(() => wire.uuid("nope"), { message: '"nope" is not a UUID' });
});
