/** systemd/hooksd.service, embedded in the executable by a text import. */
declare module "*.service" {
  const text: string;
  export default text;
}
