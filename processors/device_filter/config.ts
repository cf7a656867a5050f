import { defineSchema } from '../../src/config/schema.ts';

export interface DeviceFilterConfig {
  include_devices: string[];
  exclude_devices: string[];
  required_tags: string[];
  tag_match: 'any' | 'all';
  online_only: boolean;
}

export const configSchema = defineSchema<DeviceFilterConfig>(
  {
    include_devices: { doc: 'Keep only devices whose name, short name, hostname or id matches (* globs; empty = all).', format: 'string_list', default: [] },
    exclude_devices: { doc: 'Drop devices whose name, short name, hostname or id matches (* globs).', format: 'string_list', default: [] },
    required_tags: { doc: 'Keep only devices with these tags (see tag_match; empty = no requirement).', format: 'string_list', default: [] },
    tag_match: { doc: 'any: one of required_tags is enough; all: every one is needed.', format: ['any', 'all'], default: 'any' },
    online_only: { doc: 'Keep only devices that are connected to the control plane.', format: Boolean, default: false },
  },
  (c) => c.required_tags.filter((t) => !t.startsWith('tag:')).map((t) => ({ path: 'required_tags', message: `"${t}" must start with "tag:"` })),
);
