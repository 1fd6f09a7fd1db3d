/**
 * How layers are named: Megatron's layer_number, 1-based over all layers, dense and MoE together
 * (megatron/core/transformer/transformer_block.py builds layer i with `layer_number = i + 1`, and
 * transformer_layer.py adds the pipeline offset). FLAME-MoE's first layer is dense, so its first MoE
 * layer is layer 2, as in FLAME-MoE's code and paper.
 *
 * The worker counts layers from 0 (kernels/src/model.cpp) and stores those 0-based indices in its
 * binary files (trace.bin's layer ids, specializationCounts.ts' layerIds), which stay as they are.
 * Everything that names a layer for people or in a result key — the routing analyses' JSON `layers`
 * and `perLayer[].layer`, the report's labels and tables, the worker's `expert_load/layer{n}/...`
 * metrics and `expertLoad.layer{n}` result keys — uses the Megatron number: index + 1.
 */

/** Megatron's layer_number of the layer at 0-based index `index` (a trace's stored layer id). */
export const megatronLayerNumber = (index: number): number => index + 1
