// The `dpo demo` judge as a module: 1 when the completion is the right sum of an "a+b=" prompt, else 0.
//   dpo train --model_name_or_path assets/demo-adder --judge examples/addition_judge.mjs --prompts prompts.jsonl --iterations 3
export default (prompt, completion) => {
  const m = /^(\d+)\+(\d+)=$/.exec(prompt);
  if (!m) throw new Error(`not an addition prompt: ${prompt}`);
  return completion.trim() === String(Number(m[1]) + Number(m[2])) ? 1 : 0;
};
