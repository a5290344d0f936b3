//! Search spaces and architectures: the built-in spaces match
//! docs/design.md ("Built-in spaces"), TOML and text forms round-trip,
//! op-key sets cover every sampled architecture, and parsers never panic.

use std::collections::BTreeSet;

use proptest::prelude::*;
use rand::SeedableRng;
use tunas_shared::opkey::{OpKind, architecture_ops, space_op_keys};
use tunas_shared::{
    Architecture, DecisionKind, SearchSpace, SpaceError, builtin_space, builtin_spaces,
    count_distinct_networks,
};

#[test]
fn proxylessnas_has_58_decisions_and_the_published_count() {
    let space = builtin_space("proxylessnas").unwrap();
    assert_eq!(space.decisions.len(), 58);
    let expected = 3.0 * 6f64.powi(6) * 7f64.powi(15);
    let got = count_distinct_networks(&space);
    assert!((got / expected - 1.0).abs() < 1e-12, "{got} vs {expected}");
}

#[test]
fn tiny28_has_30_decisions_and_about_1_23e11_networks() {
    let space = builtin_space("tiny28").unwrap();
    assert_eq!(space.decisions.len(), 30);
    // 162 width combinations, 18 choices for each of the 3 fixed layers and
    // 19 (18 + skipped) for each of the 4 skippable ones.
    let expected = 162.0 * 18f64.powi(3) * 19f64.powi(4);
    assert_eq!(count_distinct_networks(&space), expected);
    assert!((expected / 1.23e11 - 1.0).abs() < 0.01);
}

#[test]
fn enlarged_spaces_search_every_width() {
    let enlarged = builtin_space("proxylessnas-enlarged").unwrap();
    assert_eq!(enlarged.decisions.len(), 58 + 9);
    let filters: Vec<_> = enlarged
        .decisions
        .iter()
        .filter(|d| d.kind == DecisionKind::Filters)
        .collect();
    assert_eq!(filters.len(), 9);
    // base 16: 8, 10→8, 12→16, 16, 20→24, 24, 32
    assert_eq!(filters[0].values_text(), "8, 16, 24, 32");

    let mbv3 = builtin_space("mobilenet-v3-like").unwrap();
    let kinds = |k| mbv3.decisions.iter().filter(|d| d.kind == k).count();
    assert_eq!(kinds(DecisionKind::Filters), 8); // stem, 5 blocks, 2 head convs
    assert_eq!(kinds(DecisionKind::SqueezeExcite), 20);
    assert_eq!(kinds(DecisionKind::Skip), 16); // 15 bottlenecks + the stem's separable
    assert_eq!(kinds(DecisionKind::Kernel), 1 + 1 + 20);
}

#[test]
fn rgb_spaces_take_colour_inputs_and_shrink_to_a_few_pixels() {
    for (name, size, final_hw, decisions) in [
        ("rgb32", 32, 4, 1 + 4 + 10 * 3 + 6 + 1),
        ("rgb32-deep", 32, 4, 1 + 4 + 13 * 3 + 9 + 1),
        ("rgb96", 96, 3, 1 + 5 + 13 * 3 + 8 + 1),
    ] {
        let space = builtin_space(name).unwrap();
        assert_eq!(
            (space.input.height, space.input.width, space.input.channels),
            (size, size, 3)
        );
        assert_eq!(space.decisions.len(), decisions, "{name}");
        let net = Architecture::largest(&space).resolve(&space);
        let last = net.layers.iter().rev().find(|l| !l.skipped).unwrap();
        assert_eq!(last.in_h, final_hw, "{name}: the last stage has stride 1");
        assert!(!space_op_keys(&space, 1).is_empty());
    }
    // The deep variant's added layers repeat shapes rgb32 already has.
    let keys = |name| space_op_keys(&builtin_space(name).unwrap(), 1);
    assert_eq!(keys("rgb32-deep"), keys("rgb32"));
}

#[test]
fn unknown_space_names_the_known_ones() {
    let err = builtin_space("resnet").unwrap_err();
    assert!(matches!(err, SpaceError::Unknown { .. }));
    assert!(
        err.to_string().contains("tiny28, tiny28-ops, proxylessnas"),
        "{err}"
    );
}

#[test]
fn toml_round_trip_keeps_every_builtin_space_and_its_hash() {
    for space in builtin_spaces() {
        let text = space.to_toml();
        let back = SearchSpace::from_toml_str(&text, "round-trip").unwrap();
        assert_eq!(back, space);
        assert_eq!(back.content_hash(), space.content_hash());
    }
}

#[test]
fn hashes_differ_between_spaces_and_ignore_the_name() {
    let hashes: BTreeSet<String> = builtin_spaces().iter().map(|s| s.content_hash()).collect();
    assert_eq!(hashes.len(), tunas_shared::BUILTIN_SPACES.len());
    let mut renamed = builtin_space("tiny28").unwrap();
    let hash = renamed.content_hash();
    renamed.name = "my-tiny".into();
    assert_eq!(renamed.content_hash(), hash);
    renamed.stages[0].layers[0].stride = 1;
    assert_ne!(renamed.content_hash(), hash);
}

#[test]
fn invalid_toml_spaces_are_refused_with_the_field_named() {
    let base = builtin_space("tiny28").unwrap().to_toml();
    let cases = [
        (
            base.replacen("filters = \"@stage1/filters\"", "filters = \"@nope\"", 1),
            "'@nope', which is not defined",
        ),
        (
            base.replacen("kernel = \"@stage1/layer1/kernel\"", "kernel = 4", 1),
            "kernels must be odd",
        ),
        (
            base.replacen(
                "stride = 1\nkernel = \"@stage1/layer2/kernel\"",
                "stride = 2\nkernel = \"@stage1/layer2/kernel\"",
                1,
            ),
            "skippable but has stride 2",
        ),
        (
            base.replacen(
                "kernel = \"@stage1/layer1/kernel\"",
                "kernel = \"@stage1/filters\"",
                1,
            ),
            "of kind filters, but needs kind kernel",
        ),
        (
            base.replacen("kernel = \"@stage1/layer1/kernel\"", "kernel = 3", 1),
            "decision 'stage1/layer1/kernel' is not referenced",
        ),
        (base.replacen("[input]", "[inptu]", 1), "inptu"),
    ];
    for (text, needle) in cases {
        assert_ne!(text, base, "the test's edit for '{needle}' did not apply");
        let err = SearchSpace::from_toml_str(&text, "bad.toml").unwrap_err();
        assert!(err.to_string().contains(needle), "{err} lacks '{needle}'");
    }
}

#[test]
fn out_of_range_space_sizes_name_the_field_and_the_limit() {
    let base = builtin_space("tiny28").unwrap().to_toml();
    let stage1 = "name = \"stage1/filters\"\nkind = \"filters\"\nvalues = [\n    16,";
    let cases = [
        // A negative width, chosen or fixed: the field, and what it needs.
        (
            base.replacen(stage1, &stage1.replace("16,", "-16,"), 1),
            "decision 'stage1/filters' (kind filters): the value -16 must be a positive integer",
        ),
        (
            base.replacen("filters = \"@stage1/filters\"", "filters = -8", 1),
            "expected a positive integer or a decision reference",
        ),
        (
            base.replacen(stage1, &stage1.replace("16,", "2.5,"), 1),
            "the value 2.5 must be a positive integer",
        ),
        // Sizes no machine holds are refused up front, naming the field.
        (
            base.replacen(stage1, &stage1.replace("16,", "1000000000,"), 1),
            "decision 'stage1/filters' = 1000000000 is too large: at most 8192",
        ),
        (
            base.replacen("height = 28", "height = 100000", 1),
            "input.height = 100000 is too large: at most 1024",
        ),
        (
            base.replacen("filters = \"@stage1/filters\"", "filters = 9000", 1),
            "stages[0].filters = 9000 is too large",
        ),
    ];
    for (text, needle) in &cases {
        assert_ne!(*text, base, "the test's edit for '{needle}' did not apply");
        let err = SearchSpace::from_toml_str(text, "bad.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(needle), "{msg} lacks '{needle}'");
        assert!(!msg.contains("untagged enum"), "{msg}");
    }
    // Every field within its limit, and still more weights than a device
    // holds: the total is capped too.
    let wide = base
        .replace(
            "    16,\n    24,\n    32,\n]",
            "    16,\n    24,\n    8192,\n]",
        )
        .replace("    1,\n    3,\n    6,\n]", "    1,\n    3,\n    32,\n]");
    assert_ne!(wide, base);
    let err = SearchSpace::from_toml_str(&wide, "wide.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("parameters; at most 500000000"), "{err}");
    // The built-in spaces are far inside every limit.
    for name in [
        "tiny28",
        "proxylessnas",
        "proxylessnas-enlarged",
        "mobilenet-v3-like",
    ] {
        let space = builtin_space(name).unwrap();
        space.validate().unwrap();
        SearchSpace::from_toml_str(&space.to_toml(), name).unwrap();
    }
}

#[test]
fn largest_path_is_the_widest_unskipped_network() {
    let space = builtin_space("tiny28").unwrap();
    let largest = Architecture::largest(&space);
    let net = largest.resolve(&space);
    assert_eq!(net.stem_filters, 16);
    assert_eq!(net.head_filters, 192);
    assert!(net.layers.iter().all(|l| !l.skipped && l.kernel == 7));
    assert!(
        net.layers
            .iter()
            .all(|l| l.expansion == 6 && l.squeeze_excite)
    );
    // Every random architecture is no larger in FLOPs.
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let max = tunas_shared::architecture_flops(&space, &largest);
    for _ in 0..200 {
        let a = Architecture::sample_uniform(&space, &mut rng);
        assert!(tunas_shared::architecture_flops(&space, &a) <= max);
    }
}

#[test]
fn tiny28_largest_ops_have_the_expected_shapes() {
    let space = builtin_space("tiny28").unwrap();
    let ops = architecture_ops(&space, &Architecture::largest(&space), 1);
    let names: Vec<String> = ops.iter().map(|k| k.to_string()).collect();
    assert_eq!(names.len(), 1 + 7 + 2);
    assert_eq!(names[0], "stem-28x28x1-o16-m1-k3-s1-se0-relu-r0-b1");
    assert_eq!(names[1], "bottleneck-28x28x16-o32-m96-k7-s2-se1-relu-r0-b1");
    assert_eq!(
        names[2],
        "bottleneck-14x14x32-o32-m192-k7-s1-se1-relu-r1-b1"
    );
    assert_eq!(
        names[3],
        "bottleneck-14x14x32-o64-m192-k7-s2-se1-swish6-r0-b1"
    );
    assert_eq!(names[8], "head_conv-7x7x96-o192-m96-k1-s1-se0-swish6-r0-b1");
    assert_eq!(names[9], "classifier-1x1x192-o10-m192-k1-s1-se0-relu-r0-b1");
    for key in &ops {
        assert_eq!(
            key.to_string().parse::<tunas_shared::OpKey>().unwrap(),
            *key
        );
    }
}

#[test]
fn skipped_layers_execute_nothing_and_their_choices_are_inactive() {
    let space = builtin_space("tiny28").unwrap();
    let mut arch = Architecture::largest(&space);
    let skip = space.decision_index("stage2/layer3/skip").unwrap();
    arch.indices[skip] = 1;
    let ops = architecture_ops(&space, &arch, 1);
    assert_eq!(ops.len(), 9);
    let active = arch.active_decisions(&space);
    for name in ["kernel", "expansion", "squeeze-excite"] {
        let i = space
            .decision_index(&format!("stage2/layer3/{name}"))
            .unwrap();
        assert!(!active[i], "{name} of a skipped layer counts as active");
    }
    assert!(active[skip]);
    assert_eq!(active.iter().filter(|a| !**a).count(), 3);
}

#[test]
fn flops_and_params_of_a_separable_op_are_counted_by_hand() {
    let space = builtin_space("proxylessnas").unwrap();
    let ops = architecture_ops(&space, &Architecture::largest(&space), 1);
    let sep = ops.iter().find(|k| k.op == OpKind::Separable).unwrap();
    // 112x112x32, k7: depthwise 49·32·112² + pointwise 32·16·112².
    assert_eq!(sep.flops(), 49 * 32 * 112 * 112 + 32 * 16 * 112 * 112);
    assert_eq!(sep.params(), 49 * 32 + 2 * 32 + 32 * 16 + 2 * 16);
}

#[test]
fn op_key_sets_have_a_few_hundred_keys_for_tiny28() {
    let n = space_op_keys(&builtin_space("tiny28").unwrap(), 1).len();
    assert!((100..1000).contains(&n), "{n}");
}

#[test]
fn architecture_parse_errors_name_the_decision_and_allowed_values() {
    let space = builtin_space("tiny28").unwrap();
    let err = Architecture::parse(&space, "0").unwrap_err().to_string();
    assert!(
        err.contains("has 1 decision digits but space 'tiny28' has 30"),
        "{err}"
    );
    let mut text = Architecture::largest(&space).to_compact();
    text.replace_range(0..1, "7");
    let err = Architecture::parse(&space, &text).unwrap_err().to_string();
    assert!(
        err.contains("'stem/filters'") && err.contains("0=8, 1=16"),
        "{err}"
    );
    let err = Architecture::parse_spec(&space, "random:x").unwrap_err();
    assert!(err.to_string().contains("random:SEED"), "{err}");
}

#[test]
fn readable_form_has_one_line_per_layer() {
    let space = builtin_space("tiny28").unwrap();
    let text = Architecture::largest(&space).describe(&space);
    assert_eq!(text.lines().count(), 1 + 7 + 2);
    assert!(
        text.contains("stage2.1    bottleneck k7 e6 s2 se"),
        "{text}"
    );
}

fn space_and_arch() -> impl Strategy<Value = (SearchSpace, Architecture)> {
    (0usize..tunas_shared::BUILTIN_SPACES.len(), any::<u64>()).prop_map(|(i, seed)| {
        let space = builtin_spaces().swap_remove(i);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let arch = Architecture::sample_uniform(&space, &mut rng);
        (space, arch)
    })
}

proptest! {
    #[test]
    fn architecture_text_round_trips((space, arch) in space_and_arch()) {
        let text = arch.to_compact();
        prop_assert_eq!(Architecture::parse(&space, &text).unwrap(), arch);
    }

    #[test]
    fn architecture_parser_never_panics(text in ".{0,80}") {
        let space = builtin_space("tiny28").unwrap();
        let _ = Architecture::parse_spec(&space, &text);
    }

    #[test]
    fn space_parser_never_panics(text in ".{0,400}") {
        let _ = SearchSpace::from_toml_str(&text, "fuzz.toml");
    }

    #[test]
    fn space_parser_never_panics_on_mutated_spaces(
        pos in 0usize..4000,
        byte in any::<u8>(),
    ) {
        let mut text = builtin_space("tiny28").unwrap().to_toml().into_bytes();
        let i = pos % text.len();
        text[i] = byte;
        let _ = SearchSpace::from_toml_str(&String::from_utf8_lossy(&text), "fuzz.toml");
    }
}

#[test]
fn ten_thousand_sampled_architectures_stay_inside_the_key_set() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for space in builtin_spaces() {
        let keys = space_op_keys(&space, 1);
        for _ in 0..10_000 {
            let arch = Architecture::sample_uniform(&space, &mut rng);
            for key in architecture_ops(&space, &arch, 1) {
                assert!(
                    keys.contains(&key),
                    "{}: {key} of {} is not in the key set",
                    space.name,
                    arch.to_compact()
                );
            }
        }
    }
}

#[test]
fn every_key_of_the_tiny28_set_is_used_by_some_architecture() {
    // The key set is exact, not an over-approximation: sampling finds them all.
    let space = builtin_space("tiny28").unwrap();
    let keys = space_op_keys(&space, 1);
    let mut seen = BTreeSet::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for _ in 0..200_000 {
        let arch = Architecture::sample_uniform(&space, &mut rng);
        seen.extend(architecture_ops(&space, &arch, 1));
        if seen.len() == keys.len() {
            break;
        }
    }
    let missing: Vec<String> = keys.difference(&seen).map(|k| k.to_string()).collect();
    assert!(missing.is_empty(), "never sampled: {missing:?}");
}

#[test]
fn the_example_user_space_loads_and_every_op_builds_as_onnx() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/spaces/edge48.toml"
    );
    let space = tunas_shared::load_space(path).unwrap();
    assert_eq!((space.name.as_str(), space.decisions.len()), ("edge48", 17));
    assert_eq!(
        (
            space.input.height,
            space.input.channels,
            space.input.classes
        ),
        (48, 3, 6)
    );
    let keys = space_op_keys(&space, 1);
    assert_eq!(keys.len(), 115);
    assert!(
        keys.iter()
            .any(|k| k.op == OpKind::Separable && k.kernel == 9)
    );
    for key in &keys {
        tunas_shared::onnx::op_model(key, &mut tunas_shared::onnx::RandomWeights::new(1))
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}
