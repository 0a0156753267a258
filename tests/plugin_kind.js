// placeholder: the page module of the test plug-in kind "estimate" (written against the page contract)
export default { kind: "estimate" };
