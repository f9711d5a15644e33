// The container's graphics facts a GPU bench report records (bench/harness/run.ts's graphicsFacts)
// and their line in the README (bench/render.ts): the evidence beside "tfjs-webgpu could not run".
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { graphicsLine } from '../../bench/render';
import { graphicsFacts } from '../../bench/harness/run';

const root = mkdtempSync(join(tmpdir(), 'rnnlm-bench-graphics-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// Two lines of a real `ldconfig -p` listing's shape, and one that only mentions a name later on.
const LISTING = [
  '1234 libs found in cache `/etc/ld.so.cache\'',
  '\tlibvulkan.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libvulkan.so.1',
  '\tlibEGL_nvidia.so.0 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libEGL_nvidia.so.0',
  '\tlibfoo.so (libc6,x86-64) => /opt/libGLX_nvidia/libfoo.so',
].join('\n');

test('facts: the capabilities asked for, every ICD file (sorted, JSON only, missing folders skipped), the libraries the linker lists', () => {
  const dir = root;
  const a = join(dir, 'a'), b = join(dir, 'b');
  mkdirSync(a);
  mkdirSync(b);
  writeFileSync(join(a, 'nvidia_icd.json'), '{}');
  writeFileSync(join(b, 'z.json'), '{}');
  writeFileSync(join(b, 'lvp_icd.x86_64.json'), '{}');
  writeFileSync(join(b, 'README'), '');
  const g = graphicsFacts({ NVIDIA_DRIVER_CAPABILITIES: 'compute,utility' }, [a, join(dir, 'missing'), b], LISTING);
  expect(g).toEqual({
    driverCapabilities: 'compute,utility',
    vulkanIcds: [join(a, 'nvidia_icd.json'), join(b, 'lvp_icd.x86_64.json'), join(b, 'z.json')],
    libraries: { 'libvulkan.so.1': true, libEGL_nvidia: true, libGLX_nvidia: false },
  });
  expect(graphicsLine(g)).toBe(
    `graphics in this container: NVIDIA_DRIVER_CAPABILITIES \`compute,utility\`; Vulkan ICD files: \`${join(a, 'nvidia_icd.json')}\`, ` +
      `\`${join(b, 'lvp_icd.x86_64.json')}\`, \`${join(b, 'z.json')}\`; libvulkan.so.1 found, libEGL_nvidia found, libGLX_nvidia absent`,
  );
});

test('facts without the variable, ICD folders or an ldconfig: unset, none, absent', () => {
  const g = graphicsFacts({}, [join(root, 'none')], null);
  expect(g).toEqual({ driverCapabilities: null, vulkanIcds: [], libraries: { 'libvulkan.so.1': false, libEGL_nvidia: false, libGLX_nvidia: false } });
  expect(graphicsLine(g)).toBe('graphics in this container: NVIDIA_DRIVER_CAPABILITIES unset; Vulkan ICD files: none; libvulkan.so.1 absent, libEGL_nvidia absent, libGLX_nvidia absent');
});

test('this machine: the real ldconfig is read (its listing has libc), the variable comes from the environment', () => {
  const g = graphicsFacts({ NVIDIA_DRIVER_CAPABILITIES: 'all' });
  expect(g.driverCapabilities).toBe('all');
  expect(Object.keys(g.libraries)).toEqual(['libvulkan.so.1', 'libEGL_nvidia', 'libGLX_nvidia']);
  for (const f of g.vulkanIcds) expect(f).toMatch(/\.json$/);
});
