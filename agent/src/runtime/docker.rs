//! Docker through bollard: the real [`super::ContainerRuntime`].
