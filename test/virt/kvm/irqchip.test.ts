import { test } from "node:test";
import assert from "node:assert/strict";
import { KvmIrqRouting, kvmIrqLineState, type KvmIrqRoutingArch, type KvmKernelIrqRoutingEntry } from "../../../src/virt/kvm/irqchip.js";
import { KvmError } from "../../../src/virt/kvm/kvm_error.js";
import { EFAULT, EINVAL } from "../../../src/uapi/errno.js";
import { KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQ_ROUTING_MSI } from "../../../src/uapi/kvm.js";
import { decodeIrqRouting, KVM_MAX_IRQ_ROUTES, type KvmIrqRoutingEntry } from "../../../src/uapi/irqchip.js";

/** A two-chip fake arch: chip 0 answers `status0`, chip 1 `status1`; MSIs answer 7. */
class FakeArch implements KvmIrqRoutingArch {
  calls: string[] = [];
  cleared: number[] = [];
  status = [1, 1];
  readonly setMsi = (e: KvmKernelIrqRoutingEntry, src: number, level: number): number => {
    this.calls.push(`msi ${e.msiData} ${src} ${level}`);
    return level ? 7 : -1;
  };
  setRoutingEntry(e: KvmKernelIrqRoutingEntry, ue: KvmIrqRoutingEntry): void {
    if (ue.type === KVM_IRQ_ROUTING_MSI) {
      e.msiData = ue.msi!.data;
      e.set = this.setMsi;
      return;
    }
    if (ue.type !== KVM_IRQ_ROUTING_IRQCHIP || ue.irqchip!.irqchip > 1) throw new KvmError(EINVAL, "KVM_SET_GSI_ROUTING");
    e.irqchip = ue.irqchip!.irqchip;
    e.pin = ue.irqchip!.pin;
    e.set = (en, src, level) => {
      this.calls.push(`chip${en.irqchip} pin${en.pin} ${src} ${level}`);
      return this.status[en.irqchip];
    };
  }
  clearIrqSource(id: number): void {
    this.cleared.push(id);
  }
}

const chip = (gsi: number, irqchip: number, pin: number): KvmIrqRoutingEntry => ({ gsi, type: KVM_IRQ_ROUTING_IRQCHIP, flags: 0, irqchip: { irqchip, pin } });
const msi = (gsi: number, data: number, flags = 0): KvmIrqRoutingEntry => ({ gsi, type: KVM_IRQ_ROUTING_MSI, flags, msi: { addressLo: 0xfee00000, addressHi: 0, data, devid: 0 } });
const einval = (e: unknown) => e instanceof KvmError && e.errno === EINVAL;

test("kvm_set_irq fans out to every route of the GSI and sums the delivered counts", () => {
  const arch = new FakeArch();
  const r = new KvmIrqRouting(arch);
  r.setIrqRouting([chip(5, 0, 5), chip(5, 1, 3), msi(9, 0x41)]);
  assert.equal(r.setIrq(0, 5, 1, false), 2);
  assert.deepEqual(arch.calls.sort(), ["chip0 pin5 0 1", "chip1 pin3 0 1"]);
  arch.status = [0, -1];
  assert.equal(r.setIrq(0, 5, 1, false), 0, "coalesced on chip 0, ignored on chip 1");
  arch.status = [-1, -1];
  assert.equal(r.setIrq(0, 5, 1, false), -1);
  assert.equal(r.setIrq(0, 6, 1, false), -1, "no route");
  assert.equal(r.setIrq(3, 9, 1, false), 7);
  assert.equal(r.irqMapChipPin(1, 3), 5);
  assert.equal(r.irqMapChipPin(1, 4), -1);
});

test("KVM_SET_GSI_ROUTING validation: gsi range, count, flags, duplicates, unknown types", () => {
  const r = new KvmIrqRouting(new FakeArch());
  r.setIrqRouting([chip(1, 0, 1)]);
  assert.throws(() => r.setIrqRouting([chip(KVM_MAX_IRQ_ROUTES, 0, 1)]), einval);
  assert.throws(() => r.setIrqRouting(new Array(KVM_MAX_IRQ_ROUTES + 1).fill(chip(0, 0, 0))), einval);
  assert.throws(() => r.setIrqRouting([chip(1, 0, 1)], 1), einval, "routing flags");
  assert.throws(() => r.setIrqRouting([{ ...chip(1, 0, 1), flags: 1 }]), einval, "entry flags on an irqchip route");
  assert.throws(() => r.setIrqRouting([msi(1, 0, 1)]), einval, "KVM_MSI_VALID_DEVID without devid support");
  assert.throws(() => r.setIrqRouting([chip(2, 0, 1), chip(2, 0, 2)]), einval, "same chip twice on a GSI");
  assert.throws(() => r.setIrqRouting([chip(2, 0, 1), msi(2, 0)]), einval, "MSI shares a GSI");
  assert.throws(() => r.setIrqRouting([{ gsi: 3, type: 99, flags: 0 }]), einval);
  assert.equal(r.irqMapChipPin(0, 1), 1, "a failed update leaves the old table");
  r.setIrqRouting([]);
  assert.equal(r.irqMapChipPin(0, 1), -1);
  assert.equal(r.routes().length, 0);
});

test("ack notifiers follow the chip/pin -> GSI map; mask notifiers too", () => {
  const r = new KvmIrqRouting(new FakeArch());
  let updates = 0;
  r.onRoutingUpdate(() => updates++);
  r.setIrqRouting([chip(4, 1, 7)]);
  assert.equal(updates, 1);
  const acked: number[] = [];
  const n = { gsi: 4, irqAcked: () => acked.push(4) };
  r.registerIrqAckNotifier(n);
  assert.ok(r.irqHasNotifier(1, 7));
  r.notifyAckedIrq(1, 7);
  r.notifyAckedIrq(0, 7);
  assert.deepEqual(acked, [4]);
  r.unregisterIrqAckNotifier(n);
  r.notifyAckedIrq(1, 7);
  assert.deepEqual(acked, [4]);
  const masks: boolean[] = [];
  r.registerIrqMaskNotifier({ irq: 4, func: (_n, m) => masks.push(m) });
  r.fireMaskNotifiers(1, 7, true);
  r.fireMaskNotifiers(1, 7, false);
  assert.deepEqual(masks, [true, false]);
});

test("irq source ids: 0 and 1 reserved, EFAULT when exhausted, freeing clears line state", () => {
  const arch = new FakeArch();
  const r = new KvmIrqRouting(arch);
  const ids: number[] = [];
  for (let i = 0; i < 30; i++) ids.push(r.requestIrqSourceId());
  assert.equal(ids[0], 2);
  assert.equal(ids[29], 31);
  assert.throws(() => r.requestIrqSourceId(), (e) => e instanceof KvmError && e.errno === EFAULT);
  r.freeIrqSourceId(5);
  assert.deepEqual(arch.cleared, [5]);
  assert.equal(r.requestIrqSourceId(), 5);
});

test("line state is the OR of its sources", () => {
  const s = new Uint32Array(2);
  assert.equal(kvmIrqLineState(s, 1, 0, 1), 1);
  assert.equal(kvmIrqLineState(s, 1, 3, 1), 1);
  assert.equal(kvmIrqLineState(s, 1, 0, 0), 1, "source 3 still asserts");
  assert.equal(kvmIrqLineState(s, 1, 3, 0), 0);
});

test("KVM_SIGNAL_MSI goes through the arch's MSI delivery from the userspace source", () => {
  const arch = new FakeArch();
  const r = new KvmIrqRouting(arch);
  assert.equal(r.sendUserspaceMsi({ addressLo: 0xfee00000, addressHi: 0, data: 0x33, flags: 0, devid: 0 }), 7);
  assert.deepEqual(arch.calls, ["msi 51 0 1"]);
  assert.throws(() => r.sendUserspaceMsi({ addressLo: 0, addressHi: 0, data: 0, flags: 2, devid: 0 }), einval);
});

test("struct kvm_irq_routing decodes from bytes (48-byte entries)", () => {
  const b = new Uint8Array(8 + 2 * 48);
  const v = new DataView(b.buffer);
  v.setUint32(0, 2, true);
  v.setUint32(8, 3, true);
  v.setUint32(12, KVM_IRQ_ROUTING_IRQCHIP, true);
  v.setUint32(24, 2, true);
  v.setUint32(28, 7, true);
  v.setUint32(56, 40, true);
  v.setUint32(60, KVM_IRQ_ROUTING_MSI, true);
  v.setUint32(72, 0xfee01000, true);
  v.setUint32(80, 0x4062, true);
  const { flags, entries } = decodeIrqRouting(b);
  assert.equal(flags, 0);
  assert.equal(entries.length, 2);
  assert.deepEqual([entries[0].gsi, entries[0].type, entries[0].irqchip], [3, 1, { irqchip: 2, pin: 7 }]);
  assert.deepEqual([entries[1].gsi, entries[1].msi!.addressLo, entries[1].msi!.data], [40, 0xfee01000, 0x4062]);
});
